"""``inference.GRPCInferenceService`` (the Open Inference Protocol over gRPC) on the shared live server's
gRPC port, beside ``atelier.v1.Atelier``: the real ``tritonclient`` gRPC client (raw tensors, what it
sends) and our own stubs of the published proto (typed ``contents``, undecodable bytes, odd requests).
Every inference equals our own Stylize byte for byte; bad requests are INVALID_ARGUMENT or NOT_FOUND."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from tritonclient.utils import InferenceServerException

from service.api.inference import open_inference_grpc_pb2 as pb
from service.api.inference import open_inference_grpc_pb2_grpc as pb_grpc
from service.api.v1 import atelier_pb2
from service.core.imageio import decode_image, encode_image
from tests.liveserver import STYLES, TEST_SETTINGS, LiveServer

METHOD = "/inference.GRPCInferenceService/ModelInfer"


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((64, 40))) for im in (chelsea, coffee)])


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(live.grpc_target)
    yield c
    c.close()


@pytest.fixture(scope="module")
def channel(live: LiveServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(live.grpc_target) as ch:
        yield ch


def stylize_v1(live: LiveServer, image: np.ndarray, style: str, **fields: object) -> np.ndarray:
    """Our own gRPC Stylize of ``image`` (PNG both ways), as pixels."""
    req = atelier_pb2.StylizeRequest(image=encode_image(image, "png", 90), style=style, **fields)  # type: ignore[arg-type]
    return decode_image(live.stub.Stylize(req, timeout=60).image)


def image_input(images: np.ndarray, datatype: str = "UINT8") -> triton.InferInput:
    tensor = triton.InferInput("IMAGE", list(images.shape), datatype)
    tensor.set_data_from_numpy(images)
    return tensor


def code_of(call: object, *args: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=30)  # type: ignore[operator]
    err = info.value
    return err.code(), err.details()  # type: ignore[attr-defined]


def test_health_metadata_and_ready(live: LiveServer, client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta.name == "atelier" and list(meta.extensions) == ["binary_tensor_data"]
    for style in live.stub.ListStyles(atelier_pb2.ListStylesRequest(), timeout=30).styles:
        m = client.get_model_metadata(style.name, as_json=True)
        assert m["name"] == style.name and m["versions"] == [style.version]
        assert [(t["name"], t["datatype"]) for t in m["inputs"]] == [
            ("IMAGE", "UINT8"),
            ("STRENGTH", "FP32"),
            ("PRESERVE_COLOR", "BOOL"),
        ]
        assert m["outputs"][0] == {"name": "STYLIZED", "datatype": "UINT8", "shape": ["-1", "-1", "-1", "3"]}
        assert client.is_model_ready(style.name, model_version=style.version)
    assert sorted(s.name for s in live.stub.ListStyles(atelier_pb2.ListStylesRequest()).styles) == sorted(
        STYLES
    )


def test_the_health_service_names_the_v2_service(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService"), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("style", ["starry_night", "tiny_a"])
def test_infer_equals_our_stylize(
    live: LiveServer, client: triton.InferenceServerClient, images: np.ndarray, style: str
) -> None:
    result = client.infer(style, [image_input(images[:1])], request_id="g-1")
    out = result.as_numpy("STYLIZED")
    assert out is not None and out.dtype == np.uint8 and out.shape == (1, 40, 64, 3)
    np.testing.assert_array_equal(out[0], stylize_v1(live, images[0], style))
    response = result.get_response()
    assert response.id == "g-1" and response.model_name == style and response.model_version == "1"


def test_a_batch_with_options_equals_our_stylize(
    live: LiveServer, client: triton.InferenceServerClient, images: np.ndarray
) -> None:
    strength = triton.InferInput("STRENGTH", [1], "FP32")
    strength.set_data_from_numpy(np.array([0.25], np.float32))
    preserve = triton.InferInput("PRESERVE_COLOR", [1], "BOOL")
    preserve.set_data_from_numpy(np.array([True]))
    out = client.infer("tiny_b", [image_input(images), strength, preserve]).as_numpy("STYLIZED")
    assert out is not None and out.shape == images.shape
    for image, got in zip(images, out, strict=True):
        expected = stylize_v1(live, image, "tiny_b", strength=0.25, preserve_color=True)
        np.testing.assert_array_equal(got, expected)


def test_typed_contents_give_the_same_pixels(
    live: LiveServer, channel: grpc.Channel, images: np.ndarray
) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    req = pb.ModelInferRequest(model_name="starry_night")
    tensor = req.inputs.add(name="IMAGE", datatype="UINT8", shape=[1, 40, 64, 3])
    tensor.contents.uint_contents.extend(images[0].reshape(-1).tolist())
    answer = stub.ModelInfer(req, timeout=60)
    assert [(o.name, o.datatype, list(o.shape)) for o in answer.outputs] == [
        ("STYLIZED", "UINT8", [1, 40, 64, 3])
    ]
    out = np.frombuffer(answer.raw_output_contents[0], np.uint8).reshape(40, 64, 3)
    np.testing.assert_array_equal(out, stylize_v1(live, images[0], "starry_night"))


# --- bad requests -------------------------------------------------------------------------------------
def raw_request(
    shape: list[int], raw: bytes, datatype: str = "UINT8", model: str = "starry_night"
) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model, raw_input_contents=[raw])
    req.inputs.add(name="IMAGE", datatype=datatype, shape=shape)
    return req


def test_bad_requests_are_invalid_argument_or_not_found(channel: grpc.Channel, images: np.ndarray) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    raw = images[:1, :16, :16].tobytes()
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases: list[tuple[pb.ModelInferRequest, grpc.StatusCode, str]] = [
        (raw_request([1, 16, 16, 3], raw, model="nope"), grpc.StatusCode.NOT_FOUND, "Unknown model 'nope'"),
        (raw_request([1, 16, 16, 3], raw, "FP64"), invalid, "must be UINT8 or FP32, got FP64"),
        (raw_request([1, 16, 16, 1], raw), invalid, "must have shape"),
        (raw_request([1, 16, 16, 3], raw[:-5]), invalid, "needs 768 bytes of raw data"),
        (raw_request([1, 16, 16, 3], raw, "FP32"), invalid, "needs 3072 bytes"),
        (raw_request([0, 16, 16, 3], b""), invalid, "takes 1 to 8"),
    ]
    side = int(TEST_SETTINGS["max_image_pixels"] ** 0.5) + 2
    cases.append(
        (raw_request([1, side, side, 3], b""), invalid, "megapixels")
    )  # ImageTooLarge: from the shape
    versioned = raw_request([1, 16, 16, 3], raw)
    versioned.model_version = "2"
    cases.append((versioned, grpc.StatusCode.NOT_FOUND, "no version '2'"))
    two_raw = raw_request([1, 16, 16, 3], raw)
    two_raw.raw_input_contents.append(raw)
    cases.append((two_raw, invalid, "one per input"))
    mixed = raw_request([1, 16, 16, 3], raw)
    mixed.inputs[0].contents.uint_contents.append(1)
    cases.append((mixed, invalid, "use one or the other"))
    out_name = raw_request([1, 16, 16, 3], raw)
    out_name.outputs.add(name="LOGITS")
    cases.append((out_name, invalid, "Unknown output"))
    for req, code, message in cases:
        got, details = code_of(stub.ModelInfer, req)
        assert got == code and message in details, (got, details, message)
    assert stub.ModelInfer(raw_request([1, 16, 16, 3], raw), timeout=60).outputs[0].name == "STYLIZED"


def test_undecodable_bytes_and_unknown_methods(
    channel: grpc.Channel, client: triton.InferenceServerClient
) -> None:
    call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    code, details = code_of(call, b"\xff\xff\xff")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "inference/open_inference_grpc.proto" in details
    # Triton's own extensions (repository, statistics) are not in the protocol's proto: UNIMPLEMENTED.
    with pytest.raises(InferenceServerException) as info:
        client.get_model_repository_index()
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"
    with pytest.raises(InferenceServerException) as info:
        client.get_inference_statistics("starry_night")
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    code, details = code_of(stub.ModelReady, pb.ModelReadyRequest(name="nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "Available" in details


def test_tritonclient_reads_our_grpc_errors(client: triton.InferenceServerClient, images: np.ndarray) -> None:
    bad = triton.InferInput("IMAGE", [1, 40, 64, 3], "UINT8")
    bad.set_data_from_numpy(images[:1])
    with pytest.raises(InferenceServerException) as info:
        client.infer("nope", [bad])
    assert info.value.status() == "StatusCode.NOT_FOUND"
    strength = triton.InferInput("STRENGTH", [1], "FP32")
    strength.set_data_from_numpy(np.array([np.nan], np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer("starry_night", [bad, strength])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and "strength" in info.value.message().lower()
