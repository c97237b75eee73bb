"""The web page at ``/`` and the offline API docs, in a real browser (Debian's chromium, driven by
Playwright) against a real server on 127.0.0.1 with tiny style models.

Chromium must be installed (``.ci/run`` installs it): without it these tests fail, never skip, so a
machine that cannot run them is noticed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Request, expect

from service.core.imageio import decode_image
from service.server.auth.authenticator import INVALID_MESSAGE, MISSING_MESSAGE
from service.server.auth.keys import digest_of
from service.server.transport.rest.pages import PAGE_CSP, STATIC_DIR
from tests.tinymodels import write_tiny_models
from tests.webpage import (
    MAX_SIDE_SLOW,
    SAMPLES,
    STYLES,
    PageServer,
    Tab,
    choose_sample,
    image_size,
    page_settings,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(write_tiny_models(tmp_path_factory.mktemp("models"), names=STYLES))


@pytest.fixture(scope="module")
def live(models: Path) -> Iterator[PageServer]:
    server = PageServer(page_settings(models))
    yield server
    server.close()


PAGE_KEY = "page-test-key"


@pytest.fixture(scope="module")
def keyed(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    """A server started with a keys file (the one key ``PAGE_KEY``): every /v1 call needs it."""
    keys = tmp_path_factory.mktemp("auth") / "keys"
    keys.write_text(f"page:{digest_of(PAGE_KEY).hex()}\n")
    server = PageServer(page_settings(models, api_keys_file=keys))
    yield server
    server.close()


def local_asset_urls(html: str) -> list[str]:
    """Every src/href and script-loaded URL in a docs page; asserts none points off the server."""
    urls = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""", html)
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"docs page loads {url} from elsewhere"
    return urls


def test_docs_and_redoc_reference_only_local_assets_that_answer(live: PageServer) -> None:
    for path, bundle in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = live.http.get(path)
        assert page.status_code == 200, page.text
        urls = local_asset_urls(page.text)
        assert any(u.endswith(bundle) for u in urls), urls
        for url in urls:
            if url.startswith("/openapi.json"):
                continue
            asset = live.http.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
    assert live.http.get("/docs/oauth2-redirect").status_code == 200


def test_docs_render_offline_in_the_browser(live: PageServer, tab: Tab) -> None:
    page = tab.page
    page.goto(live.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Atelier")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    page.goto(live.url + "/redoc")
    expect(page.locator("h1").first).to_contain_text("Atelier")
    expect(page.get_by_text("/v1/stylize").first).to_be_attached()
    foreign = [u for u in tab.requests if not u.startswith((live.url, "data:", "blob:", "about:"))]
    assert foreign == []
    assert tab.errors == []


def test_page_ships_with_its_assets_and_a_strict_policy(live: PageServer) -> None:
    page = live.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert "default-src 'self'" in PAGE_CSP
    assert live.http.head("/").status_code == 200
    for url in re.findall(r"""(?:src|href|data-src)="([^"]+)\"""", page.text):
        if url.startswith("#"):
            continue
        assert url.startswith("/"), f"the page loads {url} from elsewhere"
        assert live.http.get(url).status_code == 200, url
    for name in SAMPLES:
        data = (STATIC_DIR / "samples" / f"{name}.jpg").read_bytes()
        assert len(data) < 100 * 1024, name
        image = decode_image(data)  # a real photo, small enough to ship
        assert max(image.shape[:2]) <= 512 and float(np.std(image)) > 10, name
    config = live.http.get("/ui/config.json").json()
    assert "gradcam" in config["saliency_methods"]
    assert config["saliency_default"] in config["saliency_methods"]


def test_page_loads_without_console_errors(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    names = page.eval_on_selector_all("#style-select option", "os => os.map(o => o.value)")
    assert sorted(names) == sorted(STYLES)
    methods = page.eval_on_selector_all("#saliency-method option", "os => os.map(o => o.value)")
    assert "gradcam" in methods and page.input_value("#saliency-method") == "gradcam"
    assert tab.errors == []
    assert all(u.startswith((live.url, "data:", "blob:")) for u in tab.requests), tab.requests


def test_stylize_round_trip_shows_the_result(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.select_option("#style-select", "tiny_b")
    page.fill("#strength", "0.5")
    page.check("#preserve-color")
    page.get_by_role("button", name="Stylise").click()
    expect(page.locator("#stylize-status")).to_contain_text("Done")
    sample = Image.open(STATIC_DIR / "samples" / "chelsea.jpg")
    assert image_size(page, "#stylize-result") == sample.size
    link = page.locator("#stylize-download")
    expect(link).to_be_visible()
    assert link.get_attribute("download") == "atelier-tiny_b.jpg"
    assert (link.get_attribute("href") or "").startswith("blob:")
    sent = [u for u in tab.requests if "/v1/stylize?" in u]
    assert len(sent) == 1 and "strength=0.5" in sent[0] and "preserve_color=true" in sent[0], sent
    assert tab.errors == []


def test_a_bad_file_shows_the_servers_message(live: PageServer, tab: Tab) -> None:
    junk = b"this is not an image at all"
    expected = live.http.post(
        "/v1/stylize", params={"style": "tiny_b"}, files={"image": ("broken.jpg", junk, "image/jpeg")}
    ).json()["error"]["message"]
    page = tab.open(live)
    page.set_input_files(
        "#photo-file", files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": junk}]
    )
    page.get_by_role("button", name="Stylise").click()
    status = page.locator("#stylize-status")
    expect(status).to_have_attribute("data-kind", "error")
    expect(status).to_have_text(expected)
    expect(page.locator("#stylize-result")).to_be_hidden()


def test_saliency_shows_the_overlay_and_top_five(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.select_option("#saliency-method", "gradcam")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#saliency-status")).to_contain_text("Done")
    assert max(image_size(page, "#saliency-result")) == MAX_SIDE_SLOW  # the server downscaled the photo
    classes = page.locator("#saliency-classes li")
    expect(classes).to_have_count(5)
    assert "cat" in classes.first.inner_text().lower()  # the embedded classifier on a photo of a cat


def record_progress(page: Page) -> None:
    """Keep every value the progress bar takes (setting .value sets the attribute)."""
    page.evaluate(
        """() => {
          window.seenProgress = [];
          const bar = document.getElementById("job-progress");
          new MutationObserver(() => window.seenProgress.push(bar.value))
            .observe(bar, { attributes: true, attributeFilter: ["value"] });
        }"""
    )


def test_job_progress_moves_then_shows_the_result(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page, "Coffee")
    page.fill("#job-steps", "2")
    page.fill("#job-size", "64")
    record_progress(page)
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#job-status")).to_contain_text("Done")
    expect(page.locator("#job-caption")).to_have_text("Result")
    # The stream replays the job's recent events, so the bar moves through the middle even if the job
    # finished before the page subscribed (preview frames are not replayed then: see the cancel test).
    progress: list[float] = page.evaluate("window.seenProgress")
    assert any(0 < v < 1 for v in progress), progress
    assert progress == sorted(progress) and progress[-1] == 1
    assert max(image_size(page, "#job-image")) == 64
    assert (page.get_attribute("#job-download", "href") or "").startswith("blob:")
    assert tab.errors == []


def test_gatys_job_takes_the_uploaded_painting(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.get_by_label("Gatys style transfer").check()
    expect(page.locator("#job-steps")).to_have_value("100")  # the Gatys default replaced DeepDream's
    page.fill("#job-steps", "2")
    page.fill("#job-size", "48")
    page.get_by_role("button", name="Start").click()  # no painting yet: the page says what is missing
    expect(page.locator("#job-status")).to_have_text("Choose a painting for Gatys style transfer.")
    painting = (STATIC_DIR / "samples" / "coffee.jpg").read_bytes()
    page.set_input_files(
        "#painting-file", files=[{"name": "painting.jpg", "mimeType": "image/jpeg", "buffer": painting}]
    )
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#job-status")).to_contain_text("Done")
    assert max(image_size(page, "#job-image")) == 48
    assert any("/v1/jobs/gatys" in u for u in tab.requests)
    assert tab.errors == []


def test_cancel_stops_the_job_and_says_so(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    choose_sample(page)
    page.fill("#job-steps", "250")  # 1000 DeepDream steps: still running when cancelled
    page.fill("#job-size", "64")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#job-status")).to_contain_text("Step")
    # A preview frame from the event stream (one every 50 steps here), while the job runs.
    expect(page.locator("#job-image")).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    expect(page.locator("#job-caption")).to_contain_text("Preview, step")
    page.get_by_role("button", name="Cancel").click()
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-kind", "error")
    expect(status).to_contain_text("cancelled by the client")
    ids = {m.group(1) for u in tab.requests if (m := re.search(r"/v1/jobs/([^/?]+)/events", u))}
    assert len(ids) == 1
    assert live.http.get(f"/v1/jobs/{ids.pop()}").json()["state"] == "cancelled"


def test_keyboard_reaches_and_works_the_controls_with_visible_focus(live: PageServer, tab: Tab) -> None:
    page = tab.open(live)
    for _ in range(12):  # skip link, two docs links, the file input, then the samples
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Coffee":
            break
    else:
        raise AssertionError("Tab never reached the Coffee sample button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Coffee", exact=True)).to_have_attribute("aria-pressed", "true")
    page.focus("#stylize-button")
    page.keyboard.press("Enter")
    expect(page.locator("#stylize-status")).to_contain_text("Done")
    assert page.get_attribute("#stylize-status", "aria-live") == "polite"


def test_phone_width_has_no_sideways_scroll(live: PageServer, tab: Tab) -> None:
    page = tab.page
    page.set_viewport_size({"width": 360, "height": 740})
    tab.open(live)
    choose_sample(page, "Astronaut")
    page.get_by_role("button", name="Stylise").click()
    expect(page.locator("#stylize-status")).to_contain_text("Done")
    image_size(page, "#stylize-result")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    result_width = page.eval_on_selector("#stylize-result", "i => i.getBoundingClientRect().width")
    assert 0 < result_width <= 360


def test_with_api_keys_the_page_asks_for_one_then_sends_it(keyed: PageServer, tab: Tab) -> None:
    page = tab.open(keyed)
    # No key yet: the styles list failed with the API's own message, pointing at the key field.
    stylize_status = page.locator("#stylize-status")
    expect(stylize_status).to_have_attribute("data-kind", "error")
    expect(stylize_status).to_contain_text(MISSING_MESSAGE)
    expect(stylize_status).to_contain_text("“API key” field")
    key = page.get_by_label("API key")
    expect(key).to_have_attribute("type", "password")
    expect(key).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#key-status")).to_contain_text(MISSING_MESSAGE)

    sent_keys: list[str | None] = []  # the Authorization header of each /v1 call from here on

    def record_key(request: Request) -> None:
        if "/v1/" in request.url:
            sent_keys.append(request.headers.get("authorization"))

    page.on("request", record_key)
    key.fill("not-the-key")
    key.press("Enter")
    expect(stylize_status).to_contain_text(INVALID_MESSAGE)

    key.fill(PAGE_KEY)
    key.press("Enter")
    expect(page.locator("#style-select option")).to_have_count(len(STYLES))  # listed, now with the key
    expect(key).not_to_have_attribute("aria-invalid", "true")
    choose_sample(page)
    page.select_option("#style-select", "tiny_b")
    page.get_by_role("button", name="Stylise").click()
    expect(stylize_status).to_contain_text("Done")
    image_size(page, "#stylize-result")

    # A job's events come through fetch() with the key (EventSource could not send it).
    page.fill("#job-steps", "2")
    page.fill("#job-size", "64")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#job-status")).to_contain_text("Done")
    assert max(image_size(page, "#job-image")) == 64

    assert sent_keys[-1] == f"Bearer {PAGE_KEY}" and f"Bearer {PAGE_KEY}" in sent_keys
    assert any("/events" in u for u in tab.requests)
    # Kept for this tab only, and never in a URL.
    assert page.evaluate("sessionStorage.getItem('atelier.apiKey')") == PAGE_KEY
    assert page.evaluate("localStorage.length") == 0
    assert not any(PAGE_KEY in u for u in tab.requests)
    assert all("401" in e for e in tab.errors), tab.errors  # chromium logs each refused call
