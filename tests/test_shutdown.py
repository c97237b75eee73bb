"""SIGTERM: one grace period, and every job that did not finish told so (service/server/shutdown.py).

The process test sends SIGTERM to a real ``python -m service serve`` with renders running: the SSE client
and the gRPC stream both get the terminal event with the reason "server shutting down", a call in flight
answers JSON (never uvicorn's plain-text 500), new calls during the drain are refused with 503 /
UNAVAILABLE ``shutting_down``, and the process exits (the bound is a hang check, not a speed check).
The pool tests drive ``JobManager.drain`` directly with jobs that finish, run on, or never look at their
cancel token.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.core.errors import NotReady
from service.core.imageio import encode_image
from service.core.progress import CancelToken, ProgressCallback
from service.server.jobs.manager import SHUTDOWN_REASON, JobManager, JobOutput, JobState
from service.server.transport.rest.schemas import job_out
from tests.liveserver import LiveServer, ServerProcess, StartServer
from tests.test_rest_jobs import ENDLESS, QUICK, read_events, submit_gatys, wait_until

GRACE_S = 8.0
JOB_GRACE_S = 2.0  # long enough that the drain window (running jobs still running) is easy to hit


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[bytes, bytes]:
    return encode_image(chelsea[::8, ::8], "jpeg"), encode_image(coffee[::8, ::8], "jpeg")


def _running(server: ServerProcess | LiveServer, kind: str) -> float:
    text = server.http.get("/metrics").text
    m = re.search(rf'^atelier_jobs\{{kind="{kind}",state="running"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_sigterm_reports_every_job_and_stops_within_the_grace(
    start_server: StartServer, images: tuple[bytes, bytes]
) -> None:
    server: ServerProcess = start_server(
        process=True,
        grace_period_s=GRACE_S,
        job_grace_s=JOB_GRACE_S,
        job_workers=2,
        saliency_workers=1,
    )
    wait_until(lambda: server.http.get("/readyz").status_code == 200, 120, "the server never got ready")
    content, style = images

    # A render over REST, watched over SSE, and one over gRPC, both endless.
    job = submit_gatys(server, images, ENDLESS).json()  # type: ignore[arg-type]
    sse_events: list[dict[str, Any]] = []
    sse = threading.Thread(target=lambda: sse_events.extend(read_events(server, job["urls"]["events"])))  # type: ignore[arg-type]
    sse.start()
    channel = grpc.insecure_channel(server.grpc_target)
    stream = pb_grpc.AtelierStub(channel).Gatys(
        pb.GatysRequest(content=content, styles=[style], options=_struct(ENDLESS)), timeout=120
    )
    first = next(stream)
    assert first.state in ("queued", "running")
    wait_until(lambda: _running(server, "gatys") == 2, 60, "both renders never ran")

    # A REST call in flight when the signal lands: a saliency map that takes a while.
    photo = encode_image(
        np.ascontiguousarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), np.uint8)), "png"
    )
    answers: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                f"{server.url}/v1/saliency",
                params={
                    "method": "occlusion",
                    "output": "json",
                    "params": json.dumps({"window": 8, "stride": 2, "batch_size": 4}),
                },
                content=photo,
                headers={"content-type": "image/png"},
                timeout=60,
            )
        )
    )
    slow.start()
    wait_until(lambda: _running(server, "saliency") == 1, 60, "the saliency call never ran")

    server.terminate()
    server.log.wait_for(re.compile("received a stop signal"), timeout=30)

    # Drain window: running jobs still have JOB_GRACE_S; the ports are open but refuse new work.
    refused = server.http.post(
        "/v1/stylize", params={"style": "tiny_a"}, content=photo, headers={"content-type": "image/png"}
    )
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["reason"] == "shutting_down"
    with pytest.raises(grpc.RpcError) as info:
        pb_grpc.AtelierStub(channel).ListStyles(pb.ListStylesRequest(), timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE

    # The gRPC stream ends with the shutdown reason, not a cut connection.
    with pytest.raises(grpc.RpcError) as ended:
        for _ in stream:
            pass
    assert ended.value.code() == grpc.StatusCode.CANCELLED, ended.value.details()
    assert SHUTDOWN_REASON in (ended.value.details() or "")
    channel.close()

    # The SSE client gets its terminal event, with the same reason.
    sse.join(60)
    assert not sse.is_alive()
    done = sse_events[-1]
    assert done["event"] == "done" and done["data"]["state"] == "cancelled"
    assert SHUTDOWN_REASON in done["data"]["error"]["message"]

    # The call in flight answered: its map, or a JSON refusal; never a plain-text 500.
    slow.join(60)
    (answer,) = answers
    assert answer.headers["content-type"] == "application/json", answer.text[:200]
    if answer.status_code != 200:
        assert answer.status_code == 503 and answer.json()["error"]["reason"] == "shutting_down"

    assert server.proc.wait(timeout=GRACE_S * 3) == 0  # a hang check: the stop itself is bounded by GRACE_S
    assert "stopped" in server.log.text and "Traceback" not in server.log.text


def _struct(options: dict[str, Any]) -> Any:
    from google.protobuf import struct_pb2

    s = struct_pb2.Struct()
    s.update(options)
    return s


def test_stop_lets_a_job_finish_within_the_job_grace(
    start_server: StartServer, images: tuple[bytes, bytes]
) -> None:
    """In-process: a short render running at the stop finishes (succeeded), and its status says so."""
    live: LiveServer = start_server(grace_period_s=60, job_grace_s=60, warmup=False)
    job_id = submit_gatys(live, images, {**QUICK, "steps": 20}).json()["id"]
    wait_until(lambda: live.plane.jobs.get(job_id).state is not JobState.QUEUED, 60, "the job never started")
    live.run(live.server.stop())
    job = live.plane.jobs.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job_out(job).state == "succeeded"  # what GET /v1/jobs/{id} answers


# --- JobManager.drain, without a server -------------------------------------------------------------------
def _pool(workers: int = 2, queue_limit: int = 2) -> JobManager:
    return JobManager(
        workers=workers,
        queue_limit=queue_limit,
        max_runtime_s=600,
        result_ttl_s=60,
        result_max_count=10,
        result_max_bytes=1 << 20,
    )


def _until_cancelled(token: CancelToken, progress: ProgressCallback) -> JobOutput:
    while True:
        token.check()
        time.sleep(0.005)


def _deaf(release: threading.Event) -> Any:
    def work(token: CancelToken, progress: ProgressCallback) -> JobOutput:
        release.wait(30)  # never looks at its token: one endless iteration
        return JobOutput(b"late", "text/plain")

    return work


def test_drain_cancels_queued_at_once_and_running_after_the_grace() -> None:
    pool = _pool(workers=1, queue_limit=1)
    running = pool.submit("gatys", _until_cancelled)
    queued = pool.submit("gatys", _until_cancelled)
    wait_until(lambda: running.state is JobState.RUNNING, 10, "the job never started")
    start = time.monotonic()
    pool.drain(grace_s=0.2, stop_by=start + 10)
    for job in (running, queued):
        assert job.state is JobState.CANCELLED
        assert SHUTDOWN_REASON in str(job.latest.error)
    assert queued.started is None  # never ran
    with pytest.raises(NotReady):  # a drained pool takes nothing new
        pool.submit("gatys", _until_cancelled)


def test_drain_reports_a_job_that_never_checks_its_token() -> None:
    pool = _pool()
    release = threading.Event()
    stuck = pool.submit("gatys", _deaf(release))
    wait_until(lambda: stuck.state is JobState.RUNNING, 10, "the job never started")
    pool.drain(grace_s=0.0, stop_by=time.monotonic() + 0.3)
    assert stuck.state is JobState.CANCELLED and SHUTDOWN_REASON in str(stuck.latest.error)
    release.set()  # the worker comes back late: the job stays reported as cancelled
    wait_until(lambda: pool.running == 0, 10, "the worker never came back")
    assert stuck.state is JobState.CANCELLED
