"""The gRPC streaming renders end to end (Gatys, DeepDream): progress then the image, option errors,
cancelling a stream, a full job queue, deadlines. Same ``live`` server and conventions as
``test_server_grpc.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.client import AtelierClient, AtelierClientError
from service.core.imageio import encode_image
from tests.grpccalls import code_of
from tests.liveserver import LiveServer


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


# --- streaming renders ---------------------------------------------------------------------------------

SMALL_GATYS = {"size": 32, "steps": 3, "optimizer": "adam"}


def test_gatys_streams_progress_then_image(client: AtelierClient, photo: bytes) -> None:
    updates = list(client.gatys(photo, [photo], {**SMALL_GATYS, "preview_every": 1}))
    final = updates[-1]
    assert final.done and final.state == "succeeded" and max(final.width, final.height) == 32
    steps = [u.step for u in updates if u.total]
    assert steps and steps[-1] == 3 and steps == sorted(steps)
    assert any(u.preview for u in updates)  # previews arrive as JPEG when asked for


def test_deepdream_streams_progress_then_image(client: AtelierClient, photo: bytes) -> None:
    pytest.importorskip("service.core.render.deepdream", reason="the DeepDream module is not installed")
    final = client.deepdream(photo, {"octaves": 1, "steps": 2}).result()
    assert final.image and (final.width, final.height) == (226, 150)


@pytest.mark.parametrize(
    "options",
    [{"colour": 3}, {"steps": "many"}, {"size": 10_000}, {"steps": 2.5}],
    ids=["unknown", "type", "size", "int"],
)
def test_gatys_bad_options_are_invalid_argument(
    stub: pb_grpc.AtelierStub, photo: bytes, options: dict[str, Any]
) -> None:
    from google.protobuf import struct_pb2

    opts = struct_pb2.Struct()
    opts.update(options)
    req = pb.GatysRequest(content=photo, styles=[photo], options=opts)
    code, details = code_of(stub.Gatys, req, timeout=60)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details


@pytest.mark.parametrize(
    "options",
    [{"octaves": 0}, {"size": 10_000}, {"guide": 1}, {"layers": ["no_such_tap"]}],
    ids=["octaves", "size", "guide-is-a-field", "layer"],
)
def test_deepdream_bad_options_are_invalid_argument(
    stub: pb_grpc.AtelierStub, photo: bytes, options: dict[str, Any]
) -> None:
    pytest.importorskip("service.core.render.deepdream", reason="the DeepDream module is not installed")
    from google.protobuf import struct_pb2

    opts = struct_pb2.Struct()
    opts.update(options)
    code, details = code_of(stub.DeepDream, pb.DeepDreamRequest(image=photo, options=opts), timeout=60)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details


def test_gatys_without_style_or_with_bad_image(stub: pb_grpc.AtelierStub, photo: bytes) -> None:
    assert (
        code_of(stub.Gatys, pb.GatysRequest(content=photo), timeout=30)[0] == grpc.StatusCode.INVALID_ARGUMENT
    )
    bad = pb.GatysRequest(content=photo, styles=[b"not an image"])
    assert code_of(stub.Gatys, bad, timeout=30)[0] == grpc.StatusCode.INVALID_ARGUMENT


def _long_gatys(client: AtelierClient, photo: bytes, timeout: float | None = None) -> Any:
    # The most steps a render may take: it runs until the test cancels it.
    return client.gatys(photo, [photo], {"size": 32, "steps": 10_000, "optimizer": "adam"}, timeout=timeout)


def test_cancelling_a_stream_frees_the_worker(live: LiveServer, client: AtelierClient, photo: bytes) -> None:
    stream = _long_gatys(client, photo)
    updates = iter(stream)
    first = next(u for u in updates if u.step > 0)  # the render is running on the only worker
    job = live.plane.jobs.get(first.job_id)
    stream.cancel()
    assert job.wait(30), "the cancelled render should stop within one iteration"
    assert job.state == "cancelled"
    # The only worker is free again: a new render runs and completes (it would wait forever otherwise).
    assert client.gatys(photo, [photo], SMALL_GATYS).result().done


def test_full_job_queue_is_resource_exhausted_with_retry_hint(
    live: LiveServer, client: AtelierClient, photo: bytes
) -> None:
    running = _long_gatys(client, photo)
    first = next(u for u in running if u.step > 0)  # on the one worker
    queued = _long_gatys(client, photo)
    second = next(iter(queued))  # in the one queue slot
    assert second.state == "queued"
    try:
        with pytest.raises(AtelierClientError) as info:
            client.gatys(photo, [photo], SMALL_GATYS).result()
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.retry_after_s is not None and info.value.retry_after_s >= 1
        assert "Retry after" in info.value.message
    finally:
        queued.cancel()
        running.cancel()
    for update in (first, second):
        assert live.plane.jobs.get(update.job_id).wait(30)


def test_deadline_exceeded_stops_the_render(live: LiveServer, client: AtelierClient, photo: bytes) -> None:
    stream = _long_gatys(client, photo, timeout=3.0)
    job_id = ""
    with pytest.raises(AtelierClientError) as info:
        for update in stream:
            job_id = update.job_id
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    job = live.plane.jobs.get(job_id)
    assert job.wait(30) and job.state in ("deadline_exceeded", "cancelled")


def test_unary_deadline_is_honoured_by_the_data_plane(live: LiveServer, photo: bytes) -> None:
    import time

    from service.core.errors import DeadlineExceeded

    with pytest.raises(DeadlineExceeded):
        live.run(live.plane.stylize(photo, "tiny_a", deadline=time.monotonic() - 1))
    with pytest.raises(DeadlineExceeded):  # a saliency run that cannot finish in 1 ms is cut off
        live.run(live.plane.saliency(photo, "occlusion", deadline=time.monotonic() + 0.001))
