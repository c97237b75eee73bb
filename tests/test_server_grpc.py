"""The gRPC server end to end: a real server on 127.0.0.1 (port 0) over tiny seeded style models.

The shared ``live`` server (tests/conftest.py) serves these tests and the REST ones; tests that need other
settings or change the server's state start their own with ``start_server``. Waiting is always on a
condition (a stream event, a job's done flag), never a sleep. The streaming renders are in
``test_server_grpc_jobs.py``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.client import AtelierClient, AtelierClientError
from service.core.imageio import decode_image, encode_image
from service.core.stylize.engine import StyleEngine, StylizeOptions
from tests.grpccalls import code_of
from tests.liveserver import BROKEN, STYLES, LiveServer, StartServer

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def stub(live: LiveServer) -> pb_grpc.AtelierStub:
    return live.stub


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[AtelierClient]:
    with AtelierClient(live.grpc_target, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def photo() -> bytes:
    from skimage import data

    return encode_image(data.chelsea()[::2, ::2], "jpeg", 90)  # 226x150


# --- Stylize, ListStyles ------------------------------------------------------------------------------


def test_list_styles(stub: pb_grpc.AtelierStub) -> None:
    styles = stub.ListStyles(pb.ListStylesRequest(), timeout=30).styles
    assert [s.name for s in styles] == sorted(STYLES)  # the corrupt model is skipped
    assert all(s.provider == "CPUExecutionProvider" and s.version == "1" for s in styles)


def test_stylize_matches_in_process_engine(client: AtelierClient, models_dir: Path, photo: bytes) -> None:
    reply = client.stylize(photo, "tiny_b", strength=0.7)
    assert (reply.model, reply.version, reply.content_type) == ("tiny_b", "1", "image/png")
    assert set(reply.timings_ms) >= {"decode", "queue", "inference", "encode", "total"}
    served = decode_image(reply.image)
    with StyleEngine.load(models_dir, providers=("CPUExecutionProvider",), warmup=False) as engine:
        expected = engine.stylize("tiny_b", decode_image(photo), StylizeOptions(strength=0.7, max_side=4096))
    assert served.shape == expected.shape == (150, 226, 3)
    assert np.array_equal(served, expected)  # PNG is lossless: the server adds nothing to the pixels


def test_stylize_file_jpeg_and_max_side(client: AtelierClient, photo: bytes, tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    src.write_bytes(photo)
    reply = client.stylize_file(src, tmp_path / "out.jpg", "tiny_a", max_side=64)
    out = Image.open(tmp_path / "out.jpg")
    assert out.format == "JPEG" and max(out.size) == 64 and reply.content_type == "image/jpeg"


def _bomb_png(width: int = 60000, height: int = 60000) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb); no pixel data is needed to refuse it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


BAD_IMAGES = {
    "empty": b"",
    "not-an-image": b"hello, this is text",
    "truncated-png": encode_image(np.zeros((64, 64, 3), np.uint8), "png")[:60],
    "decompression-bomb": _bomb_png(),
    "too-small": encode_image(np.zeros((4, 4, 3), np.uint8), "png"),
    "pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_stylize_bad_image_is_invalid_argument(stub: pb_grpc.AtelierStub, name: str) -> None:
    code, details = code_of(
        stub.Stylize, pb.StylizeRequest(image=BAD_IMAGES[name], style="tiny_a"), timeout=30
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details


@pytest.mark.parametrize(
    "fields",
    [
        {"strength": 1.5},
        {"strength": -0.1},
        {"quality": 101},
        {"max_side": 8},
        {"max_side": 100_000},
    ],
    ids=["strength-high", "strength-negative", "quality", "max-side-small", "max-side-large"],
)
def test_stylize_bad_option_is_invalid_argument(
    stub: pb_grpc.AtelierStub, photo: bytes, fields: dict[str, Any]
) -> None:
    req = pb.StylizeRequest(image=photo, style="tiny_a", **fields)
    code, details = code_of(stub.Stylize, req, timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert next(iter(fields)) in details  # the message names the option


def test_unknown_style_is_not_found_listing_styles(stub: pb_grpc.AtelierStub, photo: bytes) -> None:
    code, details = code_of(stub.Stylize, pb.StylizeRequest(image=photo, style="van_gogh"), timeout=30)
    assert code == grpc.StatusCode.NOT_FOUND
    assert "tiny_a" in details and "tiny_b" in details


def test_message_size_limit_is_a_clear_error(stub: pb_grpc.AtelierStub) -> None:
    code, details = code_of(
        stub.Stylize, pb.StylizeRequest(image=b"\0" * (5 * MiB), style="tiny_a"), timeout=30
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in details


def test_concurrent_stylize_calls_are_batched(
    live: LiveServer, stub: pb_grpc.AtelierStub, photo: bytes
) -> None:
    metric = live.plane.metrics.registry.get_sample_value
    before = metric("atelier_batch_size_count", {"model": "tiny_a"}) or 0.0
    before_sum = metric("atelier_batch_size_sum", {"model": "tiny_a"}) or 0.0
    calls = [
        stub.Stylize.future(pb.StylizeRequest(image=photo, style="tiny_a"), timeout=60) for _ in range(6)
    ]
    replies = [c.result() for c in calls]
    runs = metric("atelier_batch_size_count", {"model": "tiny_a"}) - before
    assert metric("atelier_batch_size_sum", {"model": "tiny_a"}) - before_sum == 6
    assert runs < 6, "six concurrent same-size calls should share ONNX Runtime runs"
    assert max(r.batch_size for r in replies) > 1
    assert len({r.image for r in replies}) == 1  # batching never mixes up outputs


# --- Classify, Saliency --------------------------------------------------------------------------------


def test_classify(client: AtelierClient, photo: bytes) -> None:
    preds = client.classify(photo, top_k=3)
    assert len(preds) == 3
    assert preds[0].index in range(281, 286)  # a domestic cat class
    assert preds[0].probability >= preds[1].probability


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"top_k": 5000}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"backbone": "resnet"}, grpc.StatusCode.NOT_FOUND),
    ],
    ids=["top-k", "unknown-backbone"],
)
def test_classify_bad_options(
    stub: pb_grpc.AtelierStub, photo: bytes, fields: dict[str, Any], expected: grpc.StatusCode
) -> None:
    assert code_of(stub.Classify, pb.ClassifyRequest(image=photo, **fields), timeout=30)[0] == expected


@pytest.mark.parametrize("name", ["empty", "not-an-image", "truncated-png", "decompression-bomb", "pdf"])
def test_classify_bad_image_is_invalid_argument(stub: pb_grpc.AtelierStub, name: str) -> None:
    code, details = code_of(stub.Classify, pb.ClassifyRequest(image=BAD_IMAGES[name]), timeout=30)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details


def test_saliency_float32_map_and_predictions(client: AtelierClient, photo: bytes) -> None:
    reply = client.saliency(photo, method="gradient", output="float32", top_k=2)
    smap = np.frombuffer(reply.map, "<f4").reshape(reply.height, reply.width)
    assert (reply.width, reply.height) == (226, 150)
    assert smap.min() >= 0.0 and smap.max() <= 1.0 and smap.std() > 0
    assert len(reply.predictions) == 2 and reply.target == reply.predictions[0].index
    overlay = client.saliency(photo, method="gradient", output="overlay")
    assert Image.open(io.BytesIO(overlay.map)).size == (226, 150)


@pytest.mark.parametrize(
    "fields",
    [
        {"method": "astrology"},
        {"method": "gradient", "target_index": 5000},
        {"method": "gradient", "image": b"x"},
    ],
    ids=["method", "target", "image"],
)
def test_saliency_bad_input(stub: pb_grpc.AtelierStub, photo: bytes, fields: dict[str, Any]) -> None:
    req = pb.SaliencyRequest(image=photo)
    for key, value in fields.items():
        setattr(req, key, value)
    assert code_of(stub.Saliency, req, timeout=60)[0] == grpc.StatusCode.INVALID_ARGUMENT


# --- health, reflection, metrics -----------------------------------------------------------------------


def test_health_goes_from_not_serving_to_serving(start_server: StartServer) -> None:
    s = start_server(load_models=False)
    with grpc.insecure_channel(s.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.AtelierStub(channel)
        for name in ("", "atelier.v1.Atelier"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        code, _ = code_of(stub.ListStyles, pb.ListStylesRequest(), timeout=10)
        assert code == grpc.StatusCode.UNAVAILABLE  # calls before readiness are refused, not hung
        assert s.http.get("/readyz").status_code == 503
        s.run(s.plane.start())
        s.run(s.server.mark_ready())
        for name in ("", "atelier.v1.Atelier"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert s.http.get("/readyz").status_code == 200


def test_reflection_lists_and_describes_the_service(live: LiveServer) -> None:
    with grpc.insecure_channel(live.grpc_target) as channel:
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="atelier.v1.Atelier"),
        ]
        listed, described = list(refl.ServerReflectionInfo(iter(requests), timeout=10))
    names = {s.name for s in listed.list_services_response.service}
    assert {"atelier.v1.Atelier", "grpc.health.v1.Health"} <= names
    from google.protobuf import descriptor_pb2

    fd = descriptor_pb2.FileDescriptorProto.FromString(
        described.file_descriptor_response.file_descriptor_proto[0]
    )
    assert fd.name == "atelier/v1/atelier.proto"
    assert {m.name for m in fd.service[0].method} == {
        "Stylize",
        "ListStyles",
        "Classify",
        "Saliency",
        "Gatys",
        "DeepDream",
        "Embed",
        "ListGalleries",
        "AddToGallery",
        "SearchGallery",
        "Attack",
        "WatchJob",
        "CancelJob",
    }


CONTRACT = {  # docs/ARCHITECTURE.md: the dashboards and alert rules depend on these names and labels
    "atelier_request_duration_seconds": {"transport", "method", "model", "code"},
    "atelier_requests_in_flight": {"transport"},
    "atelier_errors_total": {"transport", "method", "reason"},
    "atelier_queue_wait_seconds": {"queue"},
    "atelier_queue_depth": {"queue"},
    "atelier_inference_duration_seconds": {"model", "provider"},
    "atelier_batch_size": {"model"},
    "atelier_jobs": {"kind", "state"},
    "atelier_jobs_finished_total": {"kind", "state"},
    "atelier_job_duration_seconds": {"kind"},
    "atelier_model_load_seconds": {"model"},
    "atelier_model_warmup_seconds": {"model"},
    "atelier_model_info": {"model", "version", "arch", "provider", "precision"},
    "atelier_model_load_failures_total": {"model"},
    "atelier_ready": set(),
}


def test_metrics_page_has_the_contract_names_and_labels(
    live: LiveServer, client: AtelierClient, photo: bytes
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client.stylize(photo, "tiny_a")
    with pytest.raises(AtelierClientError):
        client.stylize(b"junk", "tiny_a")
    page = live.http.get("/metrics")
    assert page.status_code == 200
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(page.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.labels)
    for name, labels in CONTRACT.items():
        found = [n for n in samples if n == name or n.startswith(name + "_") or name == n + "_total"]
        assert found, f"{name} missing from /metrics"
        label_sets = [set(lbls) - {"le"} for n in found for lbls in samples[n]]
        assert labels in label_sets, f"{name}: labels {label_sets[:3]} != {labels}"
    assert {"model": BROKEN} in samples["atelier_model_load_failures_total"]
    ok = {"transport": "grpc", "method": "Stylize", "model": "tiny_a", "code": "OK"}
    assert ok in samples["atelier_request_duration_seconds_count"]
    assert {"transport": "grpc", "method": "Stylize", "reason": "invalid_image"} in samples[
        "atelier_errors_total"
    ]
    assert {"model": "tiny_a", "provider": "CPUExecutionProvider"} in samples[
        "atelier_inference_duration_seconds_count"
    ]


def test_start_fails_with_a_typed_error_when_the_backbone_is_missing(
    start_server: StartServer, tmp_path: Path
) -> None:
    from service.core.errors import WeightsNotFound

    s = start_server(start=False, default_backbone="vgg16", vgg16_weights=tmp_path / "none.pth")
    with pytest.raises(WeightsNotFound, match=r"none\.pth"):
        s.start()
    assert not s.plane.ready


def test_strength_zero_returns_the_content_without_a_network_run(client: AtelierClient, photo: bytes) -> None:
    reply = client.stylize(photo, "tiny_a", strength=0.0)
    assert np.array_equal(decode_image(reply.image), decode_image(photo))
    assert reply.batch_size == 0 and reply.timings_ms["inference"] == 0.0


def test_large_images_are_tiled_like_the_engine_tiles_them(
    start_server: StartServer, models_dir: Path, photo: bytes
) -> None:
    tiling = {"tile_threshold": 128, "tile_size": 64, "tile_overlap": 8}
    s = start_server(warmup=False, **tiling)
    with AtelierClient(s.grpc_target, timeout=60) as c:
        reply = c.stylize(photo, "tiny_a")
    assert reply.batch_size == 1
    with StyleEngine.load(models_dir, providers=("CPUExecutionProvider",), warmup=False, **tiling) as engine:
        expected = engine.stylize("tiny_a", decode_image(photo), StylizeOptions(max_side=4096))
    assert np.array_equal(decode_image(reply.image), expected)


# --- one options parser for every algorithm ------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
# (algorithm, options, words of the message): the same answer over gRPC here and REST in test_rest_tracking.
BAD_OPTIONS = [
    ("saliency", {"samples": "4"}, "got the string '4'"),
    ("saliency", {"samples": NAN}, "finite number, got NaN"),
    ("saliency", {"sampels": 4}, "Known options: batch_size, noise, samples, seed"),
    ("gatys", {"steps": "3"}, "got the string '3'"),
    ("gatys", {"style_weight": INF}, "finite number, got Infinity"),
    ("gatys", {"stepz": 3}, "Unknown option 'stepz' for Gatys. Known options:"),
    ("deepdream", {"octaves": NAN}, "finite number, got NaN"),
    ("deepdream", {"preserve_color": True}, "Unknown option 'preserve_color' for DeepDream"),
]
OPTION_IDS = [f"{a}-{next(iter(o))}" for a, o, _ in BAD_OPTIONS]


def _grpc_request(algorithm: str, image: bytes, options: dict[str, Any]) -> tuple[Any, Any]:
    from google.protobuf import struct_pb2

    opts = struct_pb2.Struct()
    opts.update(options)
    if algorithm == "saliency":
        return "Saliency", pb.SaliencyRequest(image=image, method="smoothgrad", params=opts)
    if algorithm == "gatys":
        return "Gatys", pb.GatysRequest(content=image, styles=[image], options=opts)
    return "DeepDream", pb.DeepDreamRequest(image=image, options=opts)


@pytest.mark.parametrize(("algorithm", "options", "words"), BAD_OPTIONS, ids=OPTION_IDS)
def test_every_algorithm_parses_options_strictly(
    stub: pb_grpc.AtelierStub, photo: bytes, algorithm: str, options: dict[str, Any], words: str
) -> None:
    method, request = _grpc_request(algorithm, photo, options)
    code, details = code_of(getattr(stub, method), request, timeout=60)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert words in details


def test_integral_floats_are_ints(client: AtelierClient, photo: bytes) -> None:
    # A Struct carries every number as a double: samples=2 arrives as 2.0 and is read as the int 2.
    reply = client.saliency(photo, method="smoothgrad", params={"samples": 2, "seed": 1}, output="float32")
    assert reply.width == 226 and np.frombuffer(reply.map, "<f4").std() > 0


@pytest.mark.parametrize("strength", [NAN, INF])
def test_stylize_refuses_nan_and_infinity(stub: pb_grpc.AtelierStub, photo: bytes, strength: float) -> None:
    code, details = code_of(
        stub.Stylize, pb.StylizeRequest(image=photo, style="tiny_a", strength=strength), timeout=30
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "'strength' must be a finite number" in details
