"""A multi-style net over the Open Inference Protocol (KServe v2): the net is a v2 model under its own
name, with a ``STYLE_WEIGHTS`` input in the order of its ``styles`` property. On a server of its own with
the toy multi-style net (``tests/tinymulti.py``: ember, moss, tide) beside a single-style net named
``moss``, so the net's moss is reachable only through the net. With the real ``tritonclient`` (HTTP and
gRPC): the pixels equal our own Stylize of the same blend, a row per image works, and every bad weight
tensor is a 400 / INVALID_ARGUMENT naming the styles, with the server serving on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from service.core.imageio import decode_image, encode_image
from tests.liveserver import LiveServer, serving
from tests.tinymodels import write_tiny_models
from tests.tinymulti import MULTI_STYLES, write_tiny_multi


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = write_tiny_multi(write_tiny_models(tmp_path_factory.mktemp("v2multi"), names=("moss",)))
    with serving(folder) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((72, 48))) for im in (chelsea, coffee)])


def v1(server: LiveServer, image: np.ndarray, **params: str) -> np.ndarray:
    r = server.http.post(
        "/v1/stylize",
        params=params,
        content=encode_image(image, "png", 90),
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200, r.text
    return decode_image(r.content)


def inputs(images: np.ndarray, weights: np.ndarray | None, module: Any = triton) -> list[Any]:
    image = module.InferInput("IMAGE", list(images.shape), "UINT8")
    image.set_data_from_numpy(images)
    out = [image]
    if weights is not None:
        w = module.InferInput("STYLE_WEIGHTS", list(weights.shape), "FP32")
        w.set_data_from_numpy(weights.astype(np.float32))
        out.append(w)
    return out


def test_the_net_is_a_model_with_its_styles_in_order(
    server: LiveServer, client: triton.InferenceServerClient
) -> None:
    meta = client.get_model_metadata("multi")
    assert meta["properties"]["styles"] == ",".join(MULTI_STYLES)
    by_name = {t["name"]: t for t in meta["inputs"]}
    assert by_name["STYLE_WEIGHTS"] == {"name": "STYLE_WEIGHTS", "datatype": "FP32", "shape": [-1, 3]}
    assert client.is_model_ready("multi")
    # A style name is the style model it is in Stylize: moss the single net, ember the net's style.
    for name in ("moss", "ember"):
        assert "STYLE_WEIGHTS" not in {t["name"] for t in client.get_model_metadata(name)["inputs"]}


def test_one_hot_and_blends_equal_stylize(
    server: LiveServer, client: triton.InferenceServerClient, images: np.ndarray
) -> None:
    moss = client.infer("multi", inputs(images, np.array([0, 1, 0]))).as_numpy("STYLIZED")
    assert moss.shape == images.shape
    for i in range(2):
        assert np.array_equal(moss[i], v1(server, images[i], style="moss", model="multi"))
    alone = v1(server, images[0], style="moss")  # the single net of that name: another picture
    assert float(np.abs(alone.astype(float) - moss[0]).mean()) > 5
    blend = client.infer("multi", inputs(images[:1], np.array([1.0, 3.0, 0.0]))).as_numpy("STYLIZED")
    expected = v1(server, images[0], blend="ember:0.25,moss:0.75", model="multi")
    assert np.array_equal(blend[0], expected)


def test_a_row_of_weights_per_image(server: LiveServer, images: np.ndarray) -> None:
    weights = np.array([[1, 0, 0], [0, 0, 1]])
    with triton_grpc.InferenceServerClient(server.grpc_target) as grpc_client:
        out = grpc_client.infer("multi", inputs(images, weights, triton_grpc)).as_numpy("STYLIZED")
    assert np.array_equal(out[0], v1(server, images[0], style="ember"))
    assert np.array_equal(out[1], v1(server, images[1], style="tide"))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (None, "multi-style net: send STYLE_WEIGHTS"),
        (np.array([1.0, 0.0]), "must have shape [3]"),
        (np.array([[1.0, 0.0, 0.0]] * 3), "must have shape [3]"),
        (np.array([1.0, -1.0, 0.0]), "negative"),
        (np.array([0.0, 0.0, 0.0]), "zero"),
        (np.array([np.nan, 1.0, 0.0]), "finite"),
    ],
)
def test_bad_weights_are_refused_naming_the_styles(
    server: LiveServer, client: triton.InferenceServerClient, images: np.ndarray, weights: Any, message: str
) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.infer("multi", inputs(images, weights))
    assert message in str(info.value)
    if "shape" in message or "STYLE_WEIGHTS" in message:
        assert "ember, moss, tide" in str(info.value)
    assert client.infer("multi", inputs(images, np.array([0, 0, 1]))).as_numpy("STYLIZED") is not None


def test_weights_for_a_single_style_model_are_an_unknown_input(
    server: LiveServer, images: np.ndarray
) -> None:
    body = {
        "inputs": [
            {"name": "IMAGE", "datatype": "UINT8", "shape": [1, 16, 16, 3], "data": [9] * 768},
            {"name": "STYLE_WEIGHTS", "datatype": "FP32", "shape": [1], "data": [1.0]},
        ]
    }
    r = server.http.post("/v2/models/moss/infer", content=json.dumps(body).encode())
    assert r.status_code == 400 and "Unknown input 'STYLE_WEIGHTS'" in r.json()["error"], r.text
