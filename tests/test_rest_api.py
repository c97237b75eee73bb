"""The REST API against a real server (gRPC + uvicorn on 127.0.0.1, ephemeral ports) over httpx.

The shared ``live`` server of tests/conftest.py (the one the gRPC tests use too); tiny seeded ONNX style
models stand in for the shipped ones (named like them, so the README's curl examples run as written); the
backbone is the embedded EfficientNet-Lite0.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.core import errors
from service.core.errors import InvalidArgument
from service.core.imageio import ImageLimits, decode_image, encode_image
from service.core.stylize.engine import StylizeOptions
from service.server.errors import status_for
from service.server.transport.rest.errors import error_response
from tests.liveserver import STYLES, TEST_SETTINGS, LiveServer, StartServer

ROOT = Path(__file__).resolve().parents[1]
# The shared server's image limits (small, so the limit tests stay cheap).
LIMITS = ImageLimits(max_bytes=TEST_SETTINGS["max_image_bytes"], max_pixels=TEST_SETTINGS["max_image_pixels"])
BAD_OPTION = status_for(InvalidArgument("")).http  # the error table's status for a bad option


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    """A small JPEG of scikit-image's cat (96 x 64)."""
    return encode_image(np.asarray(Image.fromarray(chelsea).resize((96, 64))), "jpeg", 95)


def post_image(live: LiveServer, path: str, data: bytes, **params: Any) -> httpx.Response:
    return live.http.post(path, params=params, content=data, headers={"Content-Type": "image/jpeg"})


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return dict(body["error"])


# --- happy paths ---------------------------------------------------------------------------------------
def test_styles_lists_the_loaded_models(live: LiveServer) -> None:
    r = live.http.get("/v1/styles")
    assert r.status_code == 200
    styles = r.json()["styles"]
    assert [s["name"] for s in styles] == sorted(STYLES)
    assert {s["provider"] for s in styles} == {"CPUExecutionProvider"}


def test_stylize_matches_the_engine(live: LiveServer, photo: bytes) -> None:
    raw = post_image(live, "/v1/stylize", photo, style="starry_night")
    form = live.http.post("/v1/stylize", params={"style": "starry_night"}, files={"image": ("c.jpg", photo)})
    assert raw.status_code == form.status_code == 200
    assert raw.headers["content-type"] == "image/png" and raw.content == form.content
    assert raw.headers["x-atelier-model"] == "starry_night"
    assert raw.headers["x-atelier-provider"] == "CPUExecutionProvider"
    assert "inference;dur=" in raw.headers["server-timing"]
    # The same pixels as the engine called directly (PNG is lossless).
    assert live.plane.engine is not None
    opts = StylizeOptions(max_side=live.plane.config.max_side_stylize)
    expected = live.plane.engine.stylize("starry_night", decode_image(photo), opts)
    np.testing.assert_array_equal(decode_image(raw.content), expected)
    other = post_image(live, "/v1/stylize", photo, style="tiny_b")
    assert other.status_code == 200 and other.content != raw.content


def test_stylize_options(live: LiveServer, photo: bytes) -> None:
    content = decode_image(photo)
    none = post_image(live, "/v1/stylize", photo, style="starry_night", strength=0)
    assert none.status_code == 200
    assert np.abs(decode_image(none.content).astype(int) - content).max() <= 1  # strength 0: the photo
    small = post_image(
        live, "/v1/stylize", photo, style="starry_night", max_side=32, format="jpeg", quality=80
    )
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    assert small.content[:3] == b"\xff\xd8\xff" and max(decode_image(small.content).shape[:2]) == 32
    kept = post_image(live, "/v1/stylize", photo, style="starry_night", preserve_color="true")
    assert (
        kept.status_code == 200
        and kept.content != post_image(live, "/v1/stylize", photo, style="starry_night").content
    )


def test_classify(live: LiveServer, photo: bytes) -> None:
    r = live.http.post("/v1/classify", params={"top_k": 3}, files={"image": ("cat.jpg", photo, "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    assert body["backbone"] == "efficientnet_lite0" and len(body["predictions"]) == 3
    assert 281 <= body["predictions"][0]["index"] <= 285, body  # ImageNet's domestic cats
    probs = [p["probability"] for p in body["predictions"]]
    assert probs == sorted(probs, reverse=True)


def test_saliency_outputs(live: LiveServer, photo: bytes) -> None:
    npy = post_image(live, "/v1/saliency", photo, method="gradient", output="npy", target=285)
    assert npy.status_code == 200, npy.text
    smap = np.load(io.BytesIO(npy.content))
    assert smap.shape == (64, 96) and smap.dtype == np.float32
    assert smap.min() >= 0.0 and smap.max() <= 1.0 and smap.std() > 0
    assert npy.headers["x-atelier-target"] == "285" and npy.headers["x-atelier-method"] == "gradient"
    as_json = post_image(live, "/v1/saliency", photo, method="gradient", output="json", target=285)
    assert np.allclose(np.array(as_json.json()["map"]), smap, atol=1e-4)
    overlay = post_image(live, "/v1/saliency", photo, method="gradient")
    assert overlay.headers["content-type"] == "image/png"
    assert decode_image(overlay.content).shape == (64, 96, 3)


def test_openapi_and_docs(live: LiveServer) -> None:
    spec = live.http.get("/openapi.json").json()
    for path in (
        "/v1/stylize",
        "/v1/styles",
        "/v1/classify",
        "/v1/saliency",
        "/v1/jobs/gatys",
        "/v1/jobs/deepdream",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/result",
        "/v1/jobs/{job_id}/events",
    ):
        assert path in spec["paths"], path
    assert "image/jpeg" in spec["paths"]["/v1/stylize"]["post"]["requestBody"]["content"]
    docs = live.http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_rest_and_grpc_return_the_same_bytes(live: LiveServer, photo: bytes) -> None:
    from service.client import AtelierClient

    rest = post_image(live, "/v1/stylize", photo, style="starry_night", format="webp", quality=70)
    rest_classes = live.http.post(
        "/v1/classify", content=photo, headers={"Content-Type": "image/jpeg"}
    ).json()
    with AtelierClient(live.grpc_target, timeout=60) as client:
        grpc_image = client.stylize(photo, "starry_night", fmt="webp", quality=70)
        grpc_classes = client.classify(photo)
    assert rest.status_code == 200 and rest.content == grpc_image.image
    assert [p["index"] for p in rest_classes["predictions"]] == [p.index for p in grpc_classes]


# --- the error table, entry by entry -------------------------------------------------------------------
def _instance(cls: type[errors.AtelierError]) -> errors.AtelierError:
    if cls is errors.UnknownModel:
        return errors.UnknownModel("style", "nope", ["a", "b"])
    if cls is errors.ResourceExhausted:
        return errors.ResourceExhausted("The queue is full.", retry_after_s=2.5)
    return cls(f"{cls.__name__} happened.")


@pytest.mark.parametrize("cls", errors.ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_gets_its_table_status_as_json(cls: type[errors.AtelierError]) -> None:
    exc = _instance(cls)
    response = error_response(exc)
    assert response.status_code == status_for(exc).http
    body = json.loads(bytes(response.body))
    assert body["error"]["reason"] == exc.reason and exc.message in body["error"]["message"]
    if cls is errors.ResourceExhausted:
        assert response.headers["retry-after"] == "3"  # rounded up, whole seconds
    if cls is errors.NotReady:
        assert response.headers["retry-after"] == "1"


def test_a_bug_is_a_500_without_its_details() -> None:
    response = error_response(ValueError("secret internals"))
    assert response.status_code == 500
    body = json.loads(bytes(response.body))
    assert body["error"]["reason"] == "internal" and "secret" not in body["error"]["message"]


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(content=b"definitely not an image", headers={"Content-Type": "image/jpeg"}), "not an image"),
        (dict(content=b"", headers={"Content-Type": "image/png"}), "empty"),
        (
            dict(content=b"style=x", headers={"Content-Type": "application/x-www-form-urlencoded"}),
            "Content-Type",
        ),
        (dict(content=b"{}", headers={"Content-Type": "application/json"}), "Content-Type"),
        (dict(), "no body"),
        (dict(content=b"--b\r\ngarbage", headers={"Content-Type": "multipart/form-data"}), "multipart"),
        (dict(files={"picture": ("x.jpg", b"...")}), "field 'image'"),
        (dict(files={"image": ("x.txt", b"hello")}), "not an image"),
    ],
    ids=["garbage", "empty", "urlencoded", "json", "no-body", "no-boundary", "wrong-field", "text-file"],
)
def test_400_bad_image_or_body(live: LiveServer, kwargs: dict[str, Any], needle: str) -> None:
    r = live.http.post("/v1/stylize", params={"style": "starry_night"}, **kwargs)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["reason"] == "invalid_image" and needle in err["message"]


@pytest.mark.parametrize(
    "path,params,needle",
    [
        ("/v1/stylize", {"style": "starry_night", "strength": "abc"}, "'strength'"),
        ("/v1/stylize", {"style": "starry_night", "strength": "1.5"}, "strength"),
        ("/v1/stylize", {}, "'style' is required"),
        ("/v1/stylize", {"style": "starry_night", "max_side": "big"}, "'max_side'"),
        ("/v1/stylize", {"style": "starry_night", "format": "gif"}, "gif"),
        ("/v1/stylize", {"style": "starry_night", "quality": "0"}, "quality"),
        ("/v1/classify", {"top_k": "0"}, "top_k"),
        ("/v1/saliency", {"method": "magic"}, "magic"),
        ("/v1/saliency", {"method": "gradient", "params": "{not json"}, "params"),
        ("/v1/saliency", {"output": "svg"}, "svg"),
    ],
    ids=[
        "nan-strength",
        "strength-range",
        "no-style",
        "nan-max-side",
        "format",
        "quality",
        "top-k",
        "method",
        "params-json",
        "output",
    ],
)
def test_bad_option(live: LiveServer, photo: bytes, path: str, params: dict[str, str], needle: str) -> None:
    """Bad options get the error table's InvalidArgument status (FastAPI's 422 body never shows)."""
    r = post_image(live, path, photo, **params)
    assert r.status_code == BAD_OPTION, r.text
    err = error_of(r)
    assert err["reason"] == "invalid_argument" and needle in err["message"]
    assert "detail" not in r.json()


@pytest.mark.parametrize(
    "method,path,params",
    [
        ("POST", "/v1/stylize", {"style": "starry_night", "strength": "nan"}),
        ("POST", "/v1/stylize", {"style": "starry_night", "strength": "inf"}),
        ("POST", "/v1/stylize", {"style": "starry_night", "max_side": "99999999999999999999999"}),
        ("POST", "/v1/stylize", {"style": "starry_night", "quality": "-1"}),
        ("POST", "/v1/stylize", {"style": "../../etc/passwd"}),
        ("POST", "/v1/stylize", {"style": "\u015b\u0000"}),
        ("POST", "/v1/stylize", {"style": "starry_night", "format": ""}),
        ("POST", "/v1/classify", {"top_k": "-1"}),
        ("POST", "/v1/classify", {"backbone": "resnet9000"}),
        ("POST", "/v1/saliency", {"method": "gradient", "target": "not a label"}),
        ("POST", "/v1/saliency", {"method": "gradient", "target": "5000"}),
        ("POST", "/v1/saliency", {"method": "gradient", "params": '{"bogus": 1}'}),
        ("POST", "/v1/jobs/gatys", {}),
        ("POST", "/v1/jobs/deepdream", {"options": '{"layers": "block5"}'}),
        ("POST", "/v1/jobs/deepdream", {"options": '{"steps": 1e400}'}),
        ("GET", "/v1/jobs/%00", {}),
        ("GET", "/v1/jobs/" + "a" * 2000, {}),
    ],
)
def test_odd_requests_never_get_a_500(
    live: LiveServer, photo: bytes, method: str, path: str, params: dict[str, str]
) -> None:
    body = {"content": photo, "headers": {"Content-Type": "image/jpeg"}} if method == "POST" else {}
    r = live.http.request(method, path, params=params, **body)
    assert 400 <= r.status_code < 500, r.text
    assert error_of(r)["reason"] in {"invalid_image", "invalid_argument", "unknown_model", "unknown_job"}


def test_404_unknown_style_lists_the_known_ones(live: LiveServer, photo: bytes) -> None:
    r = post_image(live, "/v1/stylize", photo, style="mona_lisa")
    assert r.status_code == 404
    err = error_of(r)
    assert err["reason"] == "unknown_model" and "mona_lisa" in err["message"]
    assert err["details"]["available"] == sorted(STYLES)


def test_404_unknown_job_and_route(live: LiveServer) -> None:
    for method in ("GET", "DELETE"):
        r = live.http.request(method, "/v1/jobs/0123456789abcdef")
        assert r.status_code == 404 and error_of(r)["reason"] == "unknown_job"
    for path in ("/v1/jobs/0123456789abcdef/result", "/v1/jobs/0123456789abcdef/events"):
        r = live.http.get(path)
        assert r.status_code == 404 and "No job" in error_of(r)["message"]
    r = live.http.get("/v1/nothing-here")
    assert r.status_code == 404 and error_of(r)["reason"] == "not_found"
    r = live.http.put("/v1/styles")
    assert r.status_code == 405 and error_of(r)["reason"] == "method_not_allowed"


def test_413_too_many_bytes_or_pixels(live: LiveServer) -> None:
    big = b"\xff\xd8\xff" + bytes(LIMITS.max_bytes)
    r = post_image(live, "/v1/stylize", big, style="starry_night")
    assert r.status_code == 413 and error_of(r)["reason"] == "image_too_large"
    r = live.http.post("/v1/classify", files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413
    # A small file whose header promises more pixels than the limit (a decompression bomb).
    bomb = encode_image(np.zeros((1500, 3000, 3), np.uint8), "png")
    assert len(bomb) < LIMITS.max_bytes
    r = live.http.post(
        "/v1/stylize", params={"style": "starry_night"}, content=bomb, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 413 and "pixels" in error_of(r)["message"].lower()


def test_503_until_ready(start_server: StartServer, photo: bytes) -> None:
    server = start_server(load_models=False, warmup=False)
    assert server.http.get("/healthz").status_code == 200
    assert server.http.get("/readyz").status_code == 503
    for r in (
        server.http.get("/v1/styles"),
        post_image(server, "/v1/stylize", photo, style="starry_night"),
        server.http.post("/v1/jobs/gatys", files={"content": ("c.jpg", photo), "style": ("s.jpg", photo)}),
    ):
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert error_of(r)["reason"] == "not_ready"
    server.run(server.plane.start())
    assert server.http.get("/readyz").status_code == 200
    assert post_image(server, "/v1/stylize", photo, style="starry_night").status_code == 200
