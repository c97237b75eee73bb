"""Blends and paint by region over REST, gRPC and the Python client (issue #19), on a server of their own
serving a toy multi-style net (``tests/tinymulti.py``: styles ember, moss, tide) beside a single-style
net: the listing's ``net``, a one-hot blend is the pure style, a blend differs from both its styles, a
masked two-style image, the saliency mask, two regions of one net in one batch, the error table (400
with the reason, 413 with the numbers) with the server serving on, and the style metric."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from service.api.v1 import atelier_pb2 as pb
from service.client import AtelierClient, AtelierClientError
from service.core.imageio import decode_image, encode_image
from tests.grpccalls import code_of
from tests.liveserver import LiveServer, serving
from tests.tinymodels import write_tiny_models
from tests.tinymulti import write_tiny_multi


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = write_tiny_multi(write_tiny_models(tmp_path_factory.mktemp("multi"), names=("tiny_a",)))
    with serving(folder) as live:
        yield live


@pytest.fixture(scope="module")
def photo() -> bytes:
    from skimage import data

    return encode_image(data.chelsea()[::2, ::2], "png")  # 226x150, lossless so pixels compare exactly


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def left_mask() -> bytes:
    """The left 40% white (the subject), at half the photo's size: masks are resized to the photo."""
    mask = np.zeros((75, 113), np.uint8)
    mask[:, :45] = 255
    return png(mask)


def rest(
    server: LiveServer, photo: bytes, mask_file: bytes | None = None, **params: str
) -> tuple[int, object]:
    files = {"image": ("p.png", photo, "image/png")}
    if mask_file is not None:
        files["mask"] = ("m.png", mask_file, "image/png")
    res = server.http.post("/v1/stylize", params=params, files=files)
    return res.status_code, res


def pixels(res: object) -> np.ndarray:
    return decode_image(res.content)  # type: ignore[attr-defined]


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_listing_shows_the_net_of_every_style(server: LiveServer) -> None:
    body = server.http.get("/v1/styles").json()["styles"]
    assert [(s["name"], s["net"]) for s in body] == [
        ("ember", "multi"), ("moss", "multi"), ("tide", "multi"), ("tiny_a", "tiny_a")
    ]  # fmt: skip
    assert body[1]["title"] == "Toy painting moss" and body[1]["arch"] == "mobile2_multi"
    listed = server.stub.ListStyles(pb.ListStylesRequest(), timeout=30).styles
    assert [(s.name, s.net) for s in listed] == [(s["name"], s["net"]) for s in body]


def test_rest_blends(server: LiveServer, photo: bytes) -> None:
    code, moss = rest(server, photo, style="moss")
    assert code == 200 and moss.headers["X-Atelier-Model"] == "multi"  # type: ignore[attr-defined]
    code, one_hot = rest(server, photo, blend="moss:1")
    assert code == 200 and one_hot.content == moss.content  # type: ignore[attr-defined]
    _, tide = rest(server, photo, style="tide")
    code, half = rest(server, photo, blend="moss=1,tide=1")
    assert code == 200 and half.headers["X-Atelier-Style"] == "moss:0.5,tide:0.5"  # type: ignore[attr-defined]
    apart = mad(pixels(moss), pixels(tide))
    assert 0.1 * apart < mad(pixels(half), pixels(moss)) < apart
    assert 0.1 * apart < mad(pixels(half), pixels(tide)) < apart
    _, as_json = rest(server, photo, blend='{"tide": 2, "moss": 2}', model="multi")
    assert as_json.content == rest(server, photo, blend="tide:0.5,moss:0.5")[1].content  # type: ignore[attr-defined]
    # a form field works as the query parameter does
    res = server.http.post("/v1/stylize", data={"blend": "moss:1,tide:1"}, files={"image": ("p.png", photo)})
    assert res.status_code == 200 and res.content == half.content  # type: ignore[attr-defined]


def test_rest_masked_two_styles_share_one_batch(server: LiveServer, photo: bytes, left_mask: bytes) -> None:
    code, res = rest(server, photo, left_mask, style="moss", background="tide")
    assert code == 200, res.text  # type: ignore[attr-defined]
    headers = res.headers  # type: ignore[attr-defined]
    assert (headers["X-Atelier-Style"], headers["X-Atelier-Background"]) == ("moss", "tide")
    assert headers["X-Atelier-Batch-Size"] == "2"  # both regions of the one net in one ONNX Runtime run
    out, moss, tide = (
        pixels(res),
        pixels(rest(server, photo, style="moss")[1]),
        pixels(rest(server, photo, style="tide")[1]),
    )
    w = out.shape[1]
    assert mad(out[:, : w // 4], moss[:, : w // 4]) < 1.0  # the subject in one style
    assert mad(out[:, -w // 4 :], tide[:, -w // 4 :]) < 1.0  # the rest in the other
    # without a background the rest stays the photo
    code, cut = rest(server, photo, left_mask, blend="moss:1,tide:1")
    assert code == 200 and cut.headers["X-Atelier-Background"] == "photo"  # type: ignore[attr-defined]
    assert mad(pixels(cut)[:, -w // 4 :], decode_image(photo)[:, -w // 4 :]) < 1.0


def test_rest_saliency_mask(server: LiveServer, photo: bytes) -> None:
    code, res = rest(server, photo, mask="saliency", style="tide", background_blend="moss:0.5,ember:0.5")
    assert code == 200, res.text  # type: ignore[attr-defined]
    assert res.headers["X-Atelier-Background"] == "moss:0.5,ember:0.5"  # type: ignore[attr-defined]
    assert "mask;dur=" in res.headers["Server-Timing"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "mask", "status", "says"),
    [
        ({"blend": "moss:-1,tide:1"}, None, 400, "must not be negative"),
        ({"blend": "moss:0,tide:0"}, None, 400, "all zero"),
        ({"blend": "moss:nan"}, None, 400, "finite number"),
        ({"blend": "moss:1,moss:1"}, None, 400, "twice"),
        ({"blend": "moss:1,starry:1"}, None, 400, "Known styles: ember, moss, tide"),
        ({"blend": "moss:1", "style": "tide"}, None, 400, "not both"),
        ({"style": "tide", "mask": "face"}, None, 400, "mask=saliency"),
        ({"style": "tide", "background": "moss"}, None, 400, "outside a mask"),
        ({"style": "tide"}, "square", 400, "aspect ratio"),
        ({"style": "tide"}, "huge", 413, "4.4 megapixels; the limit is 4.0 megapixels"),
        ({"style": "tide"}, "garbage", 400, "not an image"),
        ({"style": "tide", "background": "starry"}, "ok", 404, "Available: ember, moss, tide, tiny_a"),
    ],
)
def test_rest_bad_calls_are_refused_and_the_server_serves_on(
    server: LiveServer, photo: bytes, left_mask: bytes, params: dict[str, str], mask: str | None, status: int,
    says: str,
) -> None:  # fmt: skip
    masks = {
        "ok": left_mask,
        "square": png(np.zeros((50, 50), np.uint8)),
        "huge": png(np.zeros((2100, 2100), np.uint8)),  # a small file whose header says 4.4 megapixels
        "garbage": b"not an image at all",
    }
    code, res = rest(server, photo, masks.get(mask or ""), **params)
    assert code == status, res.text  # type: ignore[attr-defined]
    assert says in res.json()["error"]["message"]  # type: ignore[attr-defined]
    assert rest(server, photo, style="moss")[0] == 200


def request(photo: bytes, **fields: object) -> pb.StylizeRequest:
    return pb.StylizeRequest(image=photo, **fields)  # type: ignore[arg-type]


def test_grpc_blend_and_masked_call(server: LiveServer, photo: bytes, left_mask: bytes) -> None:
    half = [pb.StyleWeight(style="moss", weight=1.0), pb.StyleWeight(style="tide", weight=1.0)]
    res = server.stub.Stylize(request(photo, blend=half), timeout=30)
    assert (res.model, res.style) == ("multi", "moss:0.5,tide:0.5")
    assert res.image == rest(server, photo, blend="moss:1,tide:1")[1].content  # type: ignore[attr-defined]
    one = server.stub.Stylize(request(photo, blend=[pb.StyleWeight(style="tide", weight=3.0)]), timeout=30)
    assert one.image == server.stub.Stylize(request(photo, style="tide"), timeout=30).image
    masked = server.stub.Stylize(
        request(photo, style="tiny_a", mask=left_mask, background_blend=half), timeout=30
    )
    assert (masked.model, masked.style, masked.background) == ("tiny_a", "tiny_a", "moss:0.5,tide:0.5")
    salient = server.stub.Stylize(request(photo, blend=half, mask_saliency=True), timeout=30)
    assert salient.background == "photo" and "mask" in salient.timings_ms


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"blend": [pb.StyleWeight(style="moss", weight=math.nan)]}, "finite number"),
        ({"blend": [pb.StyleWeight(style="moss", weight=-1.0)]}, "must not be negative"),
        ({"blend": [pb.StyleWeight(style="moss", weight=0.0)]}, "all zero"),
        ({"blend": [pb.StyleWeight(style="mos", weight=1.0)]}, "Known styles: ember, moss, tide"),
        ({"style": "moss", "background": "tide"}, "outside a mask"),
        ({"style": "moss", "mask": b"\x89PNG broken"}, "mask"),
        ({"style": "moss", "mask": b"x", "mask_saliency": True}, "not both"),
    ],
)
def test_grpc_bad_calls_are_invalid_argument(
    server: LiveServer, photo: bytes, fields: dict[str, object], says: str
) -> None:
    code, details = code_of(server.stub.Stylize, request(photo, **fields), timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and says in details, details
    assert server.stub.Stylize(request(photo, style="ember"), timeout=30).model == "multi"


def test_python_client(server: LiveServer, photo: bytes, left_mask: bytes, tmp_path: Path) -> None:
    with AtelierClient(server.grpc_target, timeout=60) as client:
        assert ("moss", "multi") in [(s.name, s.net) for s in client.list_styles()]
        out = client.stylize_file(
            _write(tmp_path / "p.png", photo), tmp_path / "o.png", blend={"moss": 1, "tide": 1},
            mask=_write(tmp_path / "m.png", left_mask), background="ember",
        )  # fmt: skip
        assert (out.style, out.background) == ("moss:0.5,tide:0.5", "ember")
        assert decode_image((tmp_path / "o.png").read_bytes()).shape == (150, 226, 3)
        assert client.stylize(photo, blend="tide=1,moss=1", mask="saliency").background == "photo"
        with pytest.raises(AtelierClientError) as err:
            client.stylize(photo, blend="moss:1,nope:1")
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "nope" in err.value.message


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_metrics_count_renders_by_model_and_style(server: LiveServer, photo: bytes) -> None:
    rest(server, photo, blend="moss:1,tide:2")
    rest(server, photo, style="tide")
    text = server.http.get("/metrics").text
    assert 'atelier_style_requests_total{model="multi",style="blend"}' in text
    assert 'atelier_style_requests_total{model="multi",style="tide"}' in text
    assert (
        'atelier_request_duration_seconds_count{code="200",method="Stylize",model="multi",transport="rest"}'
        in text
    )
