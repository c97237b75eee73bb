"""The Open Inference Protocol (KServe v2) over REST, against the shared live server, with the real
``tritonclient`` HTTP client (binary tensor data, its default, and plain JSON) and with raw httpx for the
error cases: every inference equals our own ``POST /v1/stylize`` byte for byte (PNG is lossless and both
go through the same data plane), health/metadata/ready answer as the protocol says, and every bad request
is a 4xx with the protocol's ``{"error": "..."}`` body, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

from service.core.imageio import decode_image, encode_image
from tests.liveserver import STYLES, TEST_SETTINGS, LiveServer, StartServer

HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> np.ndarray:
    """Two 72 x 48 RGB photos as one [2, 48, 72, 3] UINT8 batch."""
    return np.stack([np.asarray(Image.fromarray(im).resize((72, 48))) for im in (chelsea, coffee)])


@pytest.fixture(scope="module")
def client(live: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(live.url.removeprefix("http://"))


def stylize_v1(live: LiveServer, image: np.ndarray, style: str, **params: Any) -> np.ndarray:
    """Our own REST Stylize of ``image`` (sent as PNG, answered as PNG), as pixels."""
    r = live.http.post(
        "/v1/stylize",
        params={"style": style, **params},
        content=encode_image(image, "png", 90),
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200, r.text
    return decode_image(r.content)


def image_input(images: np.ndarray, binary: bool = True, datatype: str = "UINT8") -> triton.InferInput:
    tensor = triton.InferInput("IMAGE", list(images.shape), datatype)
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


def scalar_inputs(strength: float, preserve: bool) -> list[triton.InferInput]:
    s = triton.InferInput("STRENGTH", [1], "FP32")
    s.set_data_from_numpy(np.array([strength], np.float32))
    p = triton.InferInput("PRESERVE_COLOR", [1], "BOOL")
    p.set_data_from_numpy(np.array([preserve]))
    return [s, p]


def v2_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return str(body["error"])


def infer_json(live: LiveServer, body: Any, model: str = "starry_night", **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return live.http.post(f"/v2/models/{model}/infer", content=content, **kw)


def image_json(shape: list[int], data: Any, datatype: str = "UINT8") -> dict[str, Any]:
    return {"inputs": [{"name": "IMAGE", "datatype": datatype, "shape": shape, "data": data}]}


# --- health and metadata ---------------------------------------------------------------------------------
def test_health_and_server_metadata(live: LiveServer, client: triton.InferenceServerClient) -> None:
    assert live.http.get("/v2/health/live").json() == {"live": True}
    assert live.http.get("/v2/health/ready").json() == {"ready": True}
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "atelier" and "binary_tensor_data" in meta["extensions"]
    assert live.http.get("/v2").json() == meta


def test_every_served_style_is_a_v2_model_under_its_own_name(
    live: LiveServer, client: triton.InferenceServerClient
) -> None:
    served = live.http.get("/v1/styles").json()["styles"]
    assert [s["name"] for s in served] == sorted(STYLES)
    for style in served:
        name, version = style["name"], style["version"]
        meta = client.get_model_metadata(name)
        assert meta["name"] == name and meta["versions"] == [version]
        assert meta["platform"] == "onnx_onnxv1"
        assert meta["inputs"] == [
            {"name": "IMAGE", "datatype": "UINT8", "shape": [-1, -1, -1, 3]},
            {"name": "STRENGTH", "datatype": "FP32", "shape": [1]},
            {"name": "PRESERVE_COLOR", "datatype": "BOOL", "shape": [1]},
        ]
        assert meta["outputs"] == [{"name": "STYLIZED", "datatype": "UINT8", "shape": [-1, -1, -1, 3]}]
        assert client.get_model_metadata(name, model_version=version) == meta
        assert client.is_model_ready(name) and client.is_model_ready(name, model_version=version)
        assert live.http.get(f"/v2/models/{name}/ready").json() == {"name": name, "ready": True}


def test_unknown_models_and_versions_are_404(live: LiveServer, client: triton.InferenceServerClient) -> None:
    assert "Available: custom, starry_night, tiny_a, tiny_b" in v2_error(
        live.http.get("/v2/models/nope"), 404
    )
    assert "no version '7'" in v2_error(live.http.get("/v2/models/starry_night/versions/7"), 404)
    v2_error(live.http.get("/v2/models/nope/ready"), 404)
    assert not client.is_model_ready("nope")
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("nope")
    assert info.value.status() == "404" and "Unknown model 'nope'" in info.value.message()
    # A path the protocol has but we do not serve (Triton's repository extension) in the same shape.
    assert "No such route" in v2_error(live.http.post("/v2/repository/index"), 404)


# --- inference equals our own Stylize ----------------------------------------------------------------------
@pytest.mark.parametrize("style", ["starry_night", "tiny_b"])
def test_binary_infer_equals_our_stylize(
    live: LiveServer, client: triton.InferenceServerClient, images: np.ndarray, style: str
) -> None:
    result = client.infer(style, [image_input(images[:1])], request_id="r-1")
    out = result.as_numpy("STYLIZED")
    assert out is not None and out.dtype == np.uint8 and out.shape == (1, 48, 72, 3)
    np.testing.assert_array_equal(out[0], stylize_v1(live, images[0], style))
    response = result.get_response()
    assert response["id"] == "r-1" and response["model_name"] == style and response["model_version"] == "1"


def test_a_batch_with_options_equals_our_stylize_image_by_image(
    live: LiveServer, client: triton.InferenceServerClient, images: np.ndarray
) -> None:
    inputs = [image_input(images), *scalar_inputs(0.5, True)]
    out = client.infer("tiny_a", inputs, model_version="1").as_numpy("STYLIZED")
    assert out is not None and out.shape == images.shape
    for image, got in zip(images, out, strict=True):
        expected = stylize_v1(live, image, "tiny_a", strength=0.5, preserve_color=True)
        np.testing.assert_array_equal(got, expected)


def test_json_tensors_and_fp32_input_give_the_same_pixels(
    live: LiveServer, client: triton.InferenceServerClient, coffee: np.ndarray
) -> None:
    # 128 x 96: its JSON body (~150 KB) is above the size parsed on the event loop, so the worker-thread
    # path for JSON bodies and JSON outputs is the one taken.
    image = np.asarray(Image.fromarray(coffee).resize((128, 96)))[None]
    expected = stylize_v1(live, image[0], "starry_night")
    wanted = [triton.InferRequestedOutput("STYLIZED", binary_data=False)]
    as_json = client.infer("starry_night", [image_input(image, binary=False)], outputs=wanted)
    assert "data" in as_json.get_output("STYLIZED")  # the output came back as a JSON list
    np.testing.assert_array_equal(as_json.as_numpy("STYLIZED")[0], expected)
    unit = (image / np.float32(255.0)).astype(np.float32)  # FP32 in [0, 1]
    as_float = client.infer("starry_night", [image_input(unit, datatype="FP32")]).as_numpy("STYLIZED")
    np.testing.assert_array_equal(as_float[0], expected)


def test_v2_calls_are_tracked_with_the_v2_method_names(
    live: LiveServer, client: triton.InferenceServerClient, images: np.ndarray
) -> None:
    client.infer("tiny_b", [image_input(images[:1])])
    text = live.http.get("/metrics").text
    assert 'method="ModelInfer",model="tiny_b",transport="rest"' in text.replace('code="200",', "")
    assert 'atelier_inference_duration_seconds_count{model="tiny_b"' in text


# --- bad requests: 4xx with {"error": "..."} ----------------------------------------------------------------
def test_bad_tensors_are_400_with_the_protocol_error_body(live: LiveServer, images: np.ndarray) -> None:
    small = images[0, :16, :16]
    flat = small.reshape(-1).tolist()
    cases: list[tuple[Any, str]] = [
        (image_json([1, 16, 16, 3], flat, "INT32"), "must be UINT8 or FP32, got INT32"),
        (image_json([1, 16, 16, 3], flat, "COMPLEX"), "unknown datatype"),
        (image_json([1, 16, 16, 4], flat), "must have shape [any, any, any, 3]"),
        (image_json([16, 16, 3], flat), "must have shape"),
        (image_json([1, 16, 16, 3], flat[:-1]), "needs 768 values, got 767"),
        (image_json([1, 16, 16, 3], [300] * 768), "between 0 and 255"),
        (image_json([1, 16, 16, 3], [0.5] * 768), "integers 0..255"),
        (image_json([1, 16, 16, 3], [2.0] * 768, "FP32"), "between 0 and 1"),
        (image_json([1, 8, 16, 3], flat[:384]), "between 16 and"),
        (image_json([9, 16, 16, 3], flat * 9), "takes 1 to 8"),
        (image_json([1, -16, 16, 3], flat), "non-negative integer"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": [{"name": "PHOTO", "datatype": "UINT8", "shape": [1], "data": [1]}]}, "Unknown input"),
        ({"inputs": [{"name": "STRENGTH", "datatype": "FP32", "shape": [1], "data": [1]}]}, "is required"),
        ({**image_json([1, 16, 16, 3], flat), "outputs": [{"name": "OUT"}]}, "Unknown output"),
        (b'{"inputs": [', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ]
    strength = {"name": "STRENGTH", "datatype": "FP32", "shape": [1], "data": [1.5]}
    cases.append(({"inputs": [*image_json([1, 16, 16, 3], flat)["inputs"], strength]}, "strength"))
    for body, message in cases:
        assert message in v2_error(infer_json(live, body), 400), body if isinstance(body, dict) else body[:40]


def test_binary_bodies_that_do_not_add_up_are_400(live: LiveServer, images: np.ndarray) -> None:
    raw = images[:1, :16, :16].tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "IMAGE",
                    "datatype": "UINT8",
                    "shape": [1, 16, 16, 3],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()

    def post(body: bytes, length: Any) -> httpx.Response:
        return infer_json(live, body, headers={HEADER: str(length)})

    assert post(header + raw, len(header)).status_code == 200
    assert "only 767 follow" in v2_error(post(header + raw[:-1], len(header)), 400)
    assert "no input's binary_data_size" in v2_error(post(header + raw + b"x", len(header)), 400)
    assert HEADER in v2_error(post(header + raw, len(header) + len(raw) + 1), 400)
    assert HEADER in v2_error(post(header + raw, "12abc"), 400)
    short = header.replace(f'"binary_data_size": {len(raw)}'.encode(), b'"binary_data_size": 700')
    assert "needs 768 bytes of raw data" in v2_error(post(short + raw[:700], len(short)), 400)
    gz = infer_json(live, header + raw, headers={HEADER: str(len(header)), "Content-Encoding": "gzip"})
    assert "not supported" in v2_error(gz, 400)


def test_too_large_is_413_before_the_data_is_read(live: LiveServer) -> None:
    # 2100 x 2100 is over the test server's 4 megapixels: refused from the shape alone.
    side = int((TEST_SETTINGS["max_image_pixels"] + 1) ** 0.5) + 1
    assert "megapixels" in v2_error(infer_json(live, image_json([1, side, side, 3], [0])), 413)
    body = b" " * (TEST_SETTINGS["max_image_bytes"] + 1)  # over the body cap (max_image_bytes)
    assert "limit" in v2_error(infer_json(live, body), 413)


def test_tritonclient_reads_our_errors(client: triton.InferenceServerClient, images: np.ndarray) -> None:
    bad = triton.InferInput("IMAGE", [1, 48, 72, 4], "UINT8")
    bad.set_data_from_numpy(np.zeros((1, 48, 72, 4), np.uint8))
    with pytest.raises(InferenceServerException) as info:
        client.infer("starry_night", [bad])
    assert info.value.status() == "400" and "must have shape" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.infer("nope", [image_input(images[:1])])
    assert info.value.status() == "404"


# --- readiness and keys, on servers of their own --------------------------------------------------------
def test_not_ready_reads_false_on_both_transports(start_server: StartServer) -> None:
    import tritonclient.grpc as triton_grpc

    server = start_server(load_models=False)
    r = server.http.get("/v2/health/ready")
    assert r.status_code == 503 and r.json()["ready"] is False and r.json()["error"]
    assert server.http.get("/v2/health/live").json() == {"live": True}
    v2_error(server.http.get("/v2/models/starry_night/ready"), 503)
    grpc_client = triton_grpc.InferenceServerClient(server.grpc_target)
    assert grpc_client.is_server_live() and not grpc_client.is_server_ready()
    assert not grpc_client.is_model_ready("starry_night")
    grpc_client.close()


def test_model_routes_need_a_key_and_probes_do_not(start_server: StartServer, tmp_path: Any) -> None:
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException as Refused

    from service.server.auth.keys import digest_of

    keys = tmp_path / "keys"
    keys.write_text(f"alice:{digest_of('alice-key').hex()}\n")
    server = start_server(api_keys_file=keys, warmup=False)
    assert server.http.get("/v2/health/ready").status_code == 200  # a probe carries no key
    assert server.http.get("/v2").status_code == 200
    r = server.http.get("/v2/models/starry_night")
    assert "key" in v2_error(r, 401).lower() and r.headers["www-authenticate"].startswith("Bearer")
    http_client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    good = {"Authorization": "Bearer alice-key"}
    assert http_client.get_model_metadata("starry_night", headers=good)["name"] == "starry_night"
    grpc_client = triton_grpc.InferenceServerClient(server.grpc_target)
    assert grpc_client.is_server_ready()  # ServerReady: no key, like grpc.health.v1
    with pytest.raises(Refused) as info:
        grpc_client.get_model_metadata("starry_night")
    assert info.value.status() == "StatusCode.UNAUTHENTICATED"
    grpc_good = {"authorization": "Bearer alice-key"}
    assert grpc_client.get_model_metadata("starry_night", headers=grpc_good).name == "starry_night"
    grpc_client.close()
