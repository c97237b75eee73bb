"""Arbitrary style over the Open Inference Protocol (KServe v2): the WCT levels are the v2 model
``custom`` with a ``STYLE_IMAGE`` input, one painting for every image of the request. On the shared live
server (tiny WCT levels, tests/arbitrary_models.py), with the real ``tritonclient`` over HTTP and gRPC:
the pixels equal our own ``POST /v1/stylize`` with the painting as a ``style_image`` part, and every bad
painting tensor is a 400 / 413 that says what to send, with the server serving on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from service.core.arbitrary.engine import MODEL_NAME
from service.core.imageio import decode_image, encode_image
from tests.arbitrary_models import painting
from tests.liveserver import TEST_SETTINGS, LiveServer


@pytest.fixture(scope="module")
def client(live: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(live.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((72, 48))) for im in (chelsea, coffee)])


ART = painting(5, (60, 84))


def tensors(
    images: np.ndarray, art: np.ndarray | None, module: Any = triton, datatype: str = "UINT8"
) -> list[Any]:
    image = module.InferInput("IMAGE", list(images.shape), "UINT8")
    image.set_data_from_numpy(images)
    out = [image]
    if art is not None:
        style = module.InferInput("STYLE_IMAGE", list(art.shape), datatype)
        style.set_data_from_numpy(art)
        out.append(style)
    return out


def v1(live: LiveServer, image: np.ndarray) -> np.ndarray:
    files = {
        "image": ("p.png", encode_image(image, "png"), "image/png"),
        "style_image": ("art.png", encode_image(ART, "png"), "image/png"),
    }
    r = live.http.post("/v1/stylize", files=files)
    assert r.status_code == 200, r.text
    return decode_image(r.content)


def test_the_levels_are_a_model_with_a_painting_input(client: triton.InferenceServerClient) -> None:
    meta = client.get_model_metadata(MODEL_NAME)
    by_name = {t["name"]: t for t in meta["inputs"]}
    assert by_name["STYLE_IMAGE"] == {"name": "STYLE_IMAGE", "datatype": "UINT8", "shape": [1, -1, -1, 3]}
    assert meta["versions"] == [meta["properties"]["levels"]] and "stem:" in meta["versions"][0]
    assert client.is_model_ready(MODEL_NAME, meta["versions"][0])


def test_paintings_as_pixels_equal_stylize(
    live: LiveServer, client: triton.InferenceServerClient, images: np.ndarray
) -> None:
    out = client.infer(MODEL_NAME, tensors(images, ART[None])).as_numpy("STYLIZED")
    assert out.shape == images.shape
    for i in range(2):
        assert np.array_equal(out[i], v1(live, images[i]))
    with triton_grpc.InferenceServerClient(live.grpc_target) as grpc_client:
        again = grpc_client.infer(MODEL_NAME, tensors(images[:1], ART[None], triton_grpc)).as_numpy(
            "STYLIZED"
        )
    assert np.array_equal(again[0], out[0])


@pytest.mark.parametrize(
    ("art", "datatype", "message"),
    [
        (None, "UINT8", "send it as STYLE_IMAGE"),
        (np.stack([ART, ART]), "UINT8", "must have shape [1, any, any, 3]"),
        (ART[None].astype(np.float32), "FP32", "UINT8"),
        (ART[None, :8, :8], "UINT8", "at least 16 pixels"),
    ],
)
def test_bad_paintings_are_refused(
    live: LiveServer,
    client: triton.InferenceServerClient,
    images: np.ndarray,
    art: np.ndarray | None,
    datatype: str,
    message: str,
) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL_NAME, tensors(images, art, datatype=datatype))
    assert message in str(info.value) and "400" in str(info.value.status())
    assert client.infer(MODEL_NAME, tensors(images[:1], ART[None])).as_numpy("STYLIZED") is not None


def test_a_painting_over_the_pixel_limit_is_413(live: LiveServer, images: np.ndarray) -> None:
    side = int(TEST_SETTINGS["max_image_pixels"] ** 0.5) + 2
    body = {
        "inputs": [
            {"name": "IMAGE", "datatype": "UINT8", "shape": [1, 16, 16, 3], "data": [9] * 768},
            {"name": "STYLE_IMAGE", "datatype": "UINT8", "shape": [1, side, side, 3], "data": [0]},
        ]
    }
    r = live.http.post(f"/v2/models/{MODEL_NAME}/infer", json=body)
    assert r.status_code == 413 and "megapixels" in r.json()["error"], r.text
