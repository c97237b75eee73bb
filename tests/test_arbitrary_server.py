"""Arbitrary style (a style_image instead of a style name) through the real server, REST and gRPC, with
tiny randomly initialised WCT levels installed beside the tiny named styles: the result, the cache, the
metric label, hostile and oversized paintings refused cleanly with the numbers, bad combinations of
options, and a server with no arbitrary model saying so (FAILED_PRECONDITION / 424, as missing weights)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from service.api.v1 import atelier_pb2 as pb
from service.client import AtelierClient, AtelierClientError
from service.core.backbones import Backbone
from service.core.imageio import decode_image, encode_image
from tests.arbitrary_models import install_tiny_levels, painting, painting_bytes
from tests.liveserver import BROKEN, STYLES, TEST_SETTINGS, LiveServer, serving
from tests.tinymodels import write_tiny_models

MAX_BYTES = TEST_SETTINGS["max_image_bytes"]


@pytest.fixture(scope="module")
def server(lite0: Backbone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = write_tiny_models(tmp_path_factory.mktemp("models"), names=STYLES, corrupt=(BROKEN,))
    with serving(install_tiny_levels(folder, lite0)) as live:
        yield live


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode_image(painting(20, (45, 61)), "jpeg", 95)


def rest_stylize(live: LiveServer, photo: bytes, style_image: bytes, **params: object) -> httpx.Response:
    files = {
        "image": ("photo.jpg", photo, "image/jpeg"),
        "style_image": ("art.png", style_image, "image/png"),
    }
    return live.http.post("/v1/stylize", params=params, files=files)


def grpc_stylize(live: LiveServer, photo: bytes, style_image: bytes, **fields: object) -> pb.StylizeResponse:
    return live.stub.Stylize(pb.StylizeRequest(image=photo, style_image=style_image, **fields), timeout=60)


def error_of(r: httpx.Response) -> dict[str, str]:
    return dict(r.json()["error"])


def test_rest_end_to_end_and_the_cache(server: LiveServer, photo: bytes) -> None:
    art = painting_bytes(21)
    first = rest_stylize(server, photo, art)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png" and first.headers["x-atelier-model"] == "custom"
    assert first.headers["x-atelier-style-cache"] == "miss"
    assert first.headers["x-atelier-model-version"] == "block3.expand:1+stem:1"
    assert decode_image(first.content).shape == (45, 61, 3)
    again = rest_stylize(server, photo, art)
    assert again.headers["x-atelier-style-cache"] == "hit" and again.content == first.content
    other = rest_stylize(server, photo, art, style_size=64, strength=0.5, format="jpeg")
    assert other.headers["x-atelier-style-cache"] == "miss" and other.headers["content-type"] == "image/jpeg"
    # The named styles are unchanged on the same route.
    named = server.http.post("/v1/stylize", params={"style": "tiny_a"}, files={"image": ("p.jpg", photo)})
    assert named.status_code == 200 and named.headers["x-atelier-model"] == "tiny_a"


def test_grpc_end_to_end_with_the_client(server: LiveServer, photo: bytes) -> None:
    art = painting_bytes(22)
    with AtelierClient(server.grpc_target) as client:
        first = client.stylize(photo, style_image=art, max_side=40)
        again = client.stylize(photo, style_image=art, max_side=40)
        named = client.stylize(photo, "tiny_b")
        with pytest.raises(ValueError, match="exactly one"):
            client.stylize(photo, "tiny_b", style_image=art)
    assert first.model == "custom" and (first.width, first.height) == (40, 30)
    assert (first.style_cached, again.style_cached) == (False, True) and again.image == first.image
    assert {"decode", "style", "inference", "encode", "total"} <= set(first.timings_ms)
    assert named.model == "tiny_b" and not named.style_cached


def test_metrics_label_every_painting_custom(server: LiveServer, photo: bytes) -> None:
    for seed in (23, 24):
        assert rest_stylize(server, photo, painting_bytes(seed)).status_code == 200
    text = server.http.get("/metrics").text
    assert re.search(r'atelier_request_duration_seconds_count\{[^}]*model="custom"', text)
    assert 'atelier_inference_duration_seconds_count{model="custom"' in text
    assert not re.search(r'model="[0-9a-f]{16,}', text)  # never a sha as a label


HOSTILE: dict[str, bytes] = {
    "random bytes": bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)),
    "truncated png": painting_bytes(25)[:300],
    "text": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_style_image_refused_on_both_transports(server: LiveServer, photo: bytes, name: str) -> None:
    r = rest_stylize(server, photo, HOSTILE[name])
    assert r.status_code == 400 and error_of(r)["reason"] == "invalid_image", r.text
    with pytest.raises(grpc.RpcError) as err:
        grpc_stylize(server, photo, HOSTILE[name])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image" in (err.value.details() or "").lower()
    assert rest_stylize(server, photo, painting_bytes(26)).status_code == 200  # and it still serves


def test_oversized_style_image_refused_with_the_numbers(server: LiveServer, photo: bytes) -> None:
    heavy = b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES + 200_000)  # bytes above the limit
    r = rest_stylize(server, photo, heavy)
    assert r.status_code == 413 and error_of(r)["reason"] == "image_too_large"
    assert "1.2 MiB" in error_of(r)["message"] and "limit is 1.0 MiB" in error_of(r)["message"]
    with pytest.raises(grpc.RpcError) as err:
        grpc_stylize(server, photo, heavy)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit is 1.0 MiB" in str(
        err.value.details()
    )
    bomb = encode_image(np.zeros((1500, 3000, 3), np.uint8), "png")  # small file, 4.5 megapixels
    assert len(bomb) < MAX_BYTES
    r = rest_stylize(server, photo, bomb)
    assert r.status_code == 413
    assert (
        "3000x1500 = 4.5 megapixels" in error_of(r)["message"] and "4.0 megapixels" in error_of(r)["message"]
    )
    with pytest.raises(grpc.RpcError) as err:
        grpc_stylize(server, photo, bomb)
    assert "3000x1500 = 4.5 megapixels" in str(err.value.details())


def test_bad_combinations_are_400(server: LiveServer, photo: bytes) -> None:
    art = painting_bytes(27)
    r = rest_stylize(server, photo, art, style="tiny_a")
    assert r.status_code == 400 and "not both" in error_of(r)["message"]
    r = server.http.post("/v1/stylize", files={"image": ("p.jpg", photo)})
    assert r.status_code == 400 and "style_image" in error_of(r)["message"]
    r = server.http.post(
        "/v1/stylize", params={"style": "tiny_a", "style_size": 256}, files={"image": ("p", photo)}
    )
    assert r.status_code == 400 and "style_size" in error_of(r)["message"]
    r = rest_stylize(server, photo, art, style_size=5000)
    assert (
        r.status_code == 400 and "style_size" in error_of(r)["message"] and "1024" in error_of(r)["message"]
    )
    with pytest.raises(grpc.RpcError) as err:
        grpc_stylize(server, photo, art, style_size=5000)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        server.stub.Stylize(pb.StylizeRequest(image=photo, style="tiny_a", style_size=64), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def named_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the tiny named styles and no WCT level."""
    folder = write_tiny_models(tmp_path_factory.mktemp("named"), names=STYLES, corrupt=(BROKEN,))
    with serving(folder) as live:
        yield live


def test_no_arbitrary_model_installed(named_only: LiveServer, photo: bytes) -> None:
    live = named_only
    r = rest_stylize(live, photo, painting_bytes(28))
    assert r.status_code == 424 and error_of(r)["reason"] == "weights_not_found"
    assert "No arbitrary-style model is installed" in error_of(r)["message"]
    assert "retry-after" not in r.headers
    with AtelierClient(live.grpc_target) as client, pytest.raises(AtelierClientError) as err:
        client.stylize(photo, style_image=painting_bytes(28))
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "No arbitrary-style model is installed" in err.value.message
    assert (
        live.http.post("/v1/stylize", params={"style": "tiny_a"}, files={"image": ("p", photo)}).status_code
        == 200
    )


def test_openapi_documents_the_style_image_part(server: LiveServer, tmp_path: Path) -> None:
    doc = server.http.get("/openapi.json").json()
    body = doc["paths"]["/v1/stylize"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "style_image" in body["properties"]
    params = {p["name"] for p in doc["paths"]["/v1/stylize"]["post"]["parameters"]}
    assert {"style", "style_size"} <= params
