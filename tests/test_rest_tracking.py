"""REST calls are tracked once in the route class, and every algorithm's options go through the one strict
parser (the same cases as over gRPC), against the shared ``live`` server of tests/conftest.py."""

import io
import json
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.core.errors import InvalidArgument
from service.core.imageio import encode_image
from service.server.errors import status_for
from tests.liveserver import LiveServer, serve_asgi
from tests.test_rest_api import error_of, post_image
from tests.test_server_grpc import BAD_OPTIONS, OPTION_IDS

BAD_OPTION = status_for(InvalidArgument("")).http  # the error table's status for a bad option


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    """A small JPEG of scikit-image's cat (96 x 64)."""
    return encode_image(np.asarray(Image.fromarray(chelsea).resize((96, 64))), "jpeg", 95)


@pytest.mark.parametrize(
    ("params", "body", "code", "reason"),
    [
        ({"style": "starry_night", "strength": "abc"}, "photo", "400", "invalid_argument"),  # FastAPI's check
        ({"style": "starry_night", "strength": "1.5"}, "photo", "400", "invalid_argument"),  # the plane's
        ({"style": "starry_night"}, "junk", "400", "invalid_image"),
        ({"style": "mona_lisa"}, "photo", "404", "unknown_model"),
        ({"style": "starry_night"}, "photo", "200", None),
    ],
    ids=["validation", "range", "image", "unknown-style", "ok"],
)
def test_each_call_is_tracked_once(
    live: LiveServer, photo: bytes, params: dict[str, str], body: str, code: str, reason: str | None
) -> None:
    """One request: one latency sample under its status code and, if it failed, one error by reason."""
    value = live.plane.metrics.registry.get_sample_value
    calls = {"transport": "rest", "method": "Stylize", "code": code}
    model = "starry_night" if code == "200" else ""
    latency = {**calls, "model": model}
    error = {"transport": "rest", "method": "Stylize", "reason": reason or "none"}
    before = (
        value("atelier_request_duration_seconds_count", latency) or 0,
        value("atelier_errors_total", error) or 0,
    )
    r = post_image(live, "/v1/stylize", photo if body == "photo" else b"junk", **params)
    assert str(r.status_code) == code, r.text
    after = (
        value("atelier_request_duration_seconds_count", latency) or 0,
        value("atelier_errors_total", error) or 0,
    )
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == (1 if reason else 0)
    assert value("atelier_requests_in_flight", {"transport": "rest"}) == 0
    text = live.http.get("/metrics").text  # the same series on the page Prometheus scrapes
    assert (
        f'atelier_request_duration_seconds_count{{code="{code}",method="Stylize",model="{model}",transport="rest"}}'
        in text
    )


def _rest_errors(live: LiveServer) -> float:
    return sum(
        sample.value
        for family in live.plane.metrics.registry.collect()
        if family.name == "atelier_errors"
        for sample in family.samples
        if sample.name == "atelier_errors_total" and sample.labels["transport"] == "rest"
    )


def test_unknown_routes_and_methods_are_not_tracked_as_calls(live: LiveServer) -> None:
    """Requests that match no route never reach a route class: answered app-wide, not counted."""
    before = _rest_errors(live)
    assert error_of(live.http.get("/v1/nothing"))["reason"] == "not_found"
    assert error_of(live.http.put("/v1/styles"))["reason"] == "method_not_allowed"
    assert _rest_errors(live) == before
    post_image(live, "/v1/stylize", b"junk", style="starry_night")
    assert _rest_errors(live) == before + 1  # the counter itself works


def test_a_bug_in_a_route_is_one_tracked_500() -> None:
    """The route class answers an unexpected exception as the table's INTERNAL, counted once."""
    from fastapi import APIRouter, FastAPI

    from service.server.metrics import Metrics
    from service.server.transport.rest.errors import install_error_handlers, route_class

    metrics = Metrics()
    router = APIRouter(route_class=route_class(metrics, {"explode": "Explode"}))

    @router.get("/explode")
    async def explode() -> None:
        raise ValueError("secret internals")

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    with serve_asgi(app) as url:
        r = httpx.get(url + "/explode", timeout=30)
    assert r.status_code == 500 and r.json()["error"]["reason"] == "internal"
    assert "secret" not in r.text
    value = metrics.registry.get_sample_value
    assert (
        value("atelier_errors_total", {"transport": "rest", "method": "Explode", "reason": "internal"}) == 1
    )
    assert (
        value(
            "atelier_request_duration_seconds_count",
            {"transport": "rest", "method": "Explode", "model": "", "code": "500"},
        )
        == 1
    )


# --- one options parser for every algorithm (the same cases as over gRPC) -----------------------------
def _rest_call(live: LiveServer, algorithm: str, photo: bytes, options: dict[str, Any]) -> httpx.Response:
    text = json.dumps(options)  # Python's json writes NaN / Infinity, as a careless client would
    if algorithm == "saliency":
        return post_image(live, "/v1/saliency", photo, method="smoothgrad", params=text)
    if algorithm == "gatys":
        files = {"content": ("c.jpg", photo, "image/jpeg"), "style": ("s.jpg", photo, "image/jpeg")}
        return live.http.post("/v1/jobs/gatys", files=files, data={"options": text})
    return post_image(live, "/v1/jobs/deepdream", photo, options=text)


@pytest.mark.parametrize(("algorithm", "options", "words"), BAD_OPTIONS, ids=OPTION_IDS)
def test_every_algorithm_parses_options_strictly(
    live: LiveServer, photo: bytes, algorithm: str, options: dict[str, Any], words: str
) -> None:
    r = _rest_call(live, algorithm, photo, options)
    assert r.status_code == BAD_OPTION, r.text
    err = error_of(r)
    assert err["reason"] == "invalid_argument" and words in err["message"]


def test_a_form_field_option_follows_the_same_rules(live: LiveServer, photo: bytes) -> None:
    # Form fields are text: one that reads as JSON is that JSON value, anything else stays a string.
    files = {"content": ("c.jpg", photo, "image/jpeg"), "style": ("s.jpg", photo, "image/jpeg")}
    r = live.http.post("/v1/jobs/gatys", files=files, data={"steps": "many"})
    assert r.status_code == BAD_OPTION and "got the string 'many'" in error_of(r)["message"]
    r = live.http.post("/v1/jobs/gatys", files=files, data={"steps": "NaN"})
    assert r.status_code == BAD_OPTION and "finite number, got NaN" in error_of(r)["message"]


def test_integral_floats_are_ints_over_rest(live: LiveServer, photo: bytes) -> None:
    params = json.dumps({"samples": 2.0, "seed": 1})
    r = post_image(live, "/v1/saliency", photo, method="smoothgrad", params=params, output="npy")
    assert r.status_code == 200, r.text
    assert np.load(io.BytesIO(r.content)).shape == (64, 96)


@pytest.mark.parametrize("strength", ["nan", "inf", "-inf"])
def test_stylize_refuses_nan_and_infinity_over_rest(live: LiveServer, photo: bytes, strength: str) -> None:
    r = post_image(live, "/v1/stylize", photo, style="starry_night", strength=strength)
    assert r.status_code == BAD_OPTION
    assert "'strength' must be a finite number" in error_of(r)["message"]
