"""The web page's style sources in a real browser: a blend of two styles of a multi-style net, the user's
own painting (arbitrary style), and the subject painted by region (mask=saliency) with the photo or
another style around it. Against a server with tiny single-style nets, a tiny multi-style net and tiny
WCT levels (tests/tinymulti.py, tests/arbitrary_models.py)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from playwright.sync_api import expect

from service.core.arbitrary.engine import MODEL_NAME as ARBITRARY_MODEL
from service.core.backbones import Backbone
from service.server.transport.rest.pages import STATIC_DIR
from tests.arbitrary_models import install_tiny_levels
from tests.tinymodels import write_tiny_models
from tests.tinymulti import write_tiny_multi
from tests.webpage import PageServer, Tab, choose_sample, image_size, page_settings


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, lite0: Backbone) -> Iterator[PageServer]:
    folder = write_tiny_models(
        tmp_path_factory.mktemp("models"), names=("tiny_b", "moss")
    )  # moss twice: alone, and in the multi net
    server = PageServer(page_settings(install_tiny_levels(write_tiny_multi(folder), lite0)))
    yield server
    server.close()


def sent_query(tab: Tab) -> dict[str, list[str]]:
    """The query of the page's one /v1/stylize call."""
    calls = [u for u in tab.requests if "/v1/stylize?" in u]
    assert len(calls) == 1, calls
    return parse_qs(urlsplit(calls[0]).query)


def stylise(tab: Tab) -> None:
    tab.page.get_by_role("button", name="Stylise").click()
    expect(tab.page.locator("#stylize-status")).to_contain_text("Done")


def test_a_blend_of_two_styles_of_one_net(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.get_by_label("A blend of two styles").check()
    expect(page.locator("#style-blend")).to_be_visible()
    page.select_option("#style-select", "multi/ember")
    # Only the styles of ember's net are offered to blend with.
    partners = page.eval_on_selector_all("#blend-second option", "os => os.map(o => o.value)")
    assert partners == ["moss", "tide"]
    page.select_option("#blend-second", "tide")
    page.fill("#blend-mix", "0.6")
    expect(page.locator("#blend-mix-value")).to_have_text("60 % / 40 %")
    stylise(tab)
    query = sent_query(tab)
    assert query["blend"] == ["ember:0.60,tide:0.40"] and query["model"] == ["multi"] and "style" not in query
    expect(page.locator("#stylize-status")).to_contain_text("with multi")
    assert page.get_attribute("#stylize-download", "download") == "atelier-blend.jpg"
    assert tab.errors == []


def test_a_single_style_net_has_nothing_to_blend_with(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.get_by_label("A blend of two styles").check()
    page.select_option("#style-select", "tiny_b")
    expect(page.locator("#blend-none")).to_be_visible()
    page.get_by_role("button", name="Stylise").click()
    status = page.locator("#stylize-status")
    expect(status).to_have_text("tiny_b has no style to blend with in its net.")
    expect(status).to_have_attribute("data-kind", "error")
    assert not [u for u in tab.requests if "/v1/stylize" in u]  # nothing was sent


def test_a_style_held_by_two_nets_is_painted_by_the_one_chosen(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    values = page.eval_on_selector_all("#style-select option", "os => os.map(o => o.value)")
    assert values == ["multi/ember", "moss", "multi/moss", "multi/tide", "tiny_b"]
    page.select_option("#style-select", "multi/moss")
    stylise(tab)
    query = sent_query(tab)
    assert query["style"] == ["moss"] and query["model"] == ["multi"]
    expect(page.locator("#stylize-status")).to_contain_text("with multi")
    assert page.get_attribute("#stylize-download", "download") == "atelier-moss.jpg"


def test_your_own_painting(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page, "Coffee")
    page.get_by_label("Your own painting").check()
    expect(page.locator("#style-select")).to_be_hidden()
    expect(page.locator("#region")).to_be_hidden()  # the API paints a painting over the whole photo
    page.get_by_role("button", name="Stylise").click()
    expect(page.locator("#stylize-status")).to_have_text("Choose a painting file first.")
    painting = (STATIC_DIR / "samples" / "chelsea.jpg").read_bytes()
    page.set_input_files(
        "#style-image-file", files=[{"name": "cat.jpg", "mimeType": "image/jpeg", "buffer": painting}]
    )
    stylise(tab)
    assert "style" not in sent_query(tab) and "blend" not in sent_query(tab)
    expect(page.locator("#stylize-status")).to_contain_text(f"with {ARBITRARY_MODEL}")
    assert image_size(page, "#stylize-result")[0] > 0
    assert tab.errors == []


def test_the_subject_in_one_style_the_background_in_another(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.select_option("#style-select", "tiny_b")
    expect(page.locator("#region-background-field")).to_be_hidden()
    page.get_by_label("Only the subject").check()
    backgrounds = page.eval_on_selector_all("#region-background option", "os => os.map(o => o.value)")
    assert backgrounds == ["", "multi/ember", "moss", "multi/moss", "multi/tide", "tiny_b"]  # "": the photo
    page.select_option("#region-background", "multi/moss")
    stylise(tab)
    query = sent_query(tab)
    assert query["style"] == ["tiny_b"] and query["mask"] == ["saliency"]
    assert query["background_blend"] == ["moss:1"] and "background" not in query  # the multi net's moss
    assert image_size(page, "#stylize-result") == Image.open(STATIC_DIR / "samples" / "chelsea.jpg").size
    assert tab.errors == []


def test_the_subject_alone_keeps_the_photo_around_it(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.select_option("#style-select", "tiny_b")
    page.get_by_label("Only the subject").check()
    page.select_option("#region-background", "moss")  # the single net named moss
    page.select_option("#region-background", "")
    stylise(tab)
    query = sent_query(tab)
    assert query["mask"] == ["saliency"] and "background" not in query and "background_blend" not in query
    assert tab.errors == []
