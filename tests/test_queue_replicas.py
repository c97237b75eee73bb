"""The shared job queue on real parts: Debian's redis-server, two API processes (``atelier serve``) and two
worker processes (``atelier worker``), all configured by ``ATELIER_*`` variables as they are deployed.

A job submitted to API A is streamed and cancelled through API B, over REST and over gRPC (``WatchJob``,
``CancelJob``); a SIGKILLed worker's job finishes on the other worker (attempts 2, visible in the job's
JSON); Redis killed mid-job ends the stream with a clear error and makes the API answer 503, and once Redis
is back the workers take new jobs again; a SIGTERMed API replica ends its gRPC job stream UNAVAILABLE and
its SSE stream with a ``shutting_down`` event, and leaves the job to the workers (watched to its end
through B). An attack job submitted to A runs on a worker, and B reads the outcome an in-process run
gives. The tests run in this order on one set of processes (the last two restart Redis and stop A).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.struct_pb2 import Struct

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.client import AtelierClient
from service.core.imageio import decode_image, encode_image
from service.core.progress import CancelToken
from service.server.plane.attack_jobs import prepare_attack
from service.server.plane.config import PlaneConfig
from tests.liveserver import ServerProcess, server_settings
from tests.queuekit import RedisServer, WorkerProcess
from tests.test_rest_jobs import ENDLESS, QUICK, read_events, submit_gatys, wait_until

RERUN = {"size": 48, "steps": 60}  # long enough to kill mid-run, short enough to run twice in seconds
ATTACK = {"eps": 8, "steps": 3, "early_stop": False}  # three PGD steps at 224 px: about a second


@dataclass
class Cluster:
    redis: RedisServer
    a: ServerProcess
    b: ServerProcess
    workers: list[WorkerProcess]


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[bytes, bytes]:
    return encode_image(chelsea[::8, ::8], "jpeg"), encode_image(coffee[::8, ::8], "jpeg")


@pytest.fixture(scope="module")
def cluster(models_dir: Path) -> Iterator[Cluster]:
    redis = RedisServer().start()
    settings = server_settings(models_dir, queue_url=redis.url)
    # All four processes start at once (their imports overlap), then each is waited for.
    workers = [WorkerProcess(redis.url) for _ in range(2)]
    apis = [ServerProcess(settings) for _ in range(2)]
    try:
        for proc in [*workers, *apis]:
            proc.start()
        for api in apis:
            wait_until(lambda api=api: api.http.get("/readyz").status_code == 200, 120, "API never ready")
        yield Cluster(redis, apis[0], apis[1], workers)
    finally:
        for proc in [*apis, *workers]:
            proc.close()
        redis.kill()


def _events_until(server: ServerProcess, job_id: str, stop: Any) -> list[dict[str, Any]]:
    """The job's SSE ``data`` documents, read until ``stop(data)`` holds or the stream ends."""
    seen: list[dict[str, Any]] = []
    with server.http.stream("GET", f"/v1/jobs/{job_id}/events") as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if stop(seen[-1]):
                    break
    return seen


def test_a_job_submitted_to_a_is_streamed_and_cancelled_through_b(
    cluster: Cluster, images: tuple[bytes, bytes]
) -> None:
    job = submit_gatys(cluster.a, images, ENDLESS).json()
    assert job["state"] == "queued" and job["attempts"] == 0
    cancelled = False
    with cluster.b.http.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = json.loads(line[5:])
            if data.get("progress") and not cancelled:  # B streams A's job live, from the worker
                gone = cluster.b.http.delete(f"/v1/jobs/{job['id']}")
                assert gone.status_code == 200 and gone.json()["state"] == "running"
                cancelled = True
            if data["state"] not in ("queued", "running"):
                break
    assert cancelled and data["state"] == "cancelled", data
    assert data["error"]["reason"] == "cancelled" and "DELETE" in data["error"]["message"]
    seen_by_a = cluster.a.http.get(f"/v1/jobs/{job['id']}").json()
    assert seen_by_a["state"] == "cancelled" and seen_by_a["attempts"] == 1
    assert cluster.a.http.get(f"/v1/jobs/{job['id']}/result").status_code == 499


def watch(stub: pb_grpc.AtelierStub, job_id: str) -> Any:
    return stub.WatchJob(pb.JobRef(job_id=job_id), timeout=60)


def rpc_error(stream: Any) -> grpc.RpcError:
    """Read a stream to its end, which must be an error status; that error."""
    with pytest.raises(grpc.RpcError) as info:
        for _ in stream:
            pass
    return info.value


def test_a_rest_job_on_a_is_watched_and_cancelled_over_grpc_on_b(
    cluster: Cluster, images: tuple[bytes, bytes]
) -> None:
    quick = submit_gatys(cluster.a, images, QUICK).json()["id"]
    with grpc.insecure_channel(cluster.b.grpc_target) as channel:
        b = pb_grpc.AtelierStub(channel)
        events = list(watch(b, quick))  # to its end: progress from the worker, then the image
        assert [e.progress.step for e in events if e.HasField("progress")][-1] == QUICK["steps"]
        assert events[-1].state == "succeeded"
        assert events[-1].result.image == cluster.a.http.get(f"/v1/jobs/{quick}/result").content

        endless = submit_gatys(cluster.a, images, ENDLESS).json()["id"]  # one queue slot: after the first
        stream = watch(b, endless)
        next(e for e in stream if e.HasField("progress"))  # running on a worker, watched live on B
        status = b.CancelJob(pb.JobRef(job_id=endless), timeout=30)
        assert status.job_id == endless and status.attempts == 1 and status.state in ("running", "cancelled")
        error: Any = rpc_error(stream)
    assert error.code() == grpc.StatusCode.CANCELLED and "CancelJob" in error.details(), error.details()
    seen_by_a = cluster.a.http.get(f"/v1/jobs/{endless}").json()
    assert seen_by_a["state"] == "cancelled" and "CancelJob" in seen_by_a["error"]["message"]


def test_an_attack_job_on_a_runs_on_a_worker_and_reads_the_same_through_b(
    cluster: Cluster, images: tuple[bytes, bytes], models_dir: Path
) -> None:
    """PGD, 3 steps on the classifier's 224 px crop: the outcome read through B (the Python client's
    ``watch_job`` over gRPC, and REST) is the one the same attack gives in this process."""
    params = {"method": "pgd", "target": "ipod", "options": json.dumps(ATTACK)}
    files = {"image": ("cat.jpg", images[0], "image/jpeg")}
    submitted = cluster.a.http.post("/v1/jobs/attack", params=params, files=files)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    with AtelierClient(cluster.b.grpc_target) as client:
        updates = list(client.watch_job(job_id, timeout=60))
    final = updates[-1]
    assert final.done and final.state == "succeeded" and all(not u.done for u in updates[:-1])
    assert [u.step for u in updates if u.total][-1] == ATTACK["steps"]  # live progress from the worker
    ran_on = cluster.redis.client().hget(f"atelier:job:{job_id}", "worker").decode()
    assert ran_on in {w.id for w in cluster.workers}
    seen_by_b = cluster.b.http.get(f"/v1/jobs/{job_id}").json()
    assert (seen_by_b["kind"], seen_by_b["state"], seen_by_b["attempts"]) == ("attack", "succeeded", 1)
    assert cluster.b.http.get(f"/v1/jobs/{job_id}/result").content == final.image

    cfg = PlaneConfig.from_settings(server_settings(models_dir)).slow()
    ref = prepare_attack(cfg, images[0], "pgd", "ipod", ATTACK)(CancelToken(), lambda p: None)
    got, want = final.attack, ref.extra
    assert got is not None and got.perturbation is not None
    assert (got.method, got.target, got.success, got.steps) == tuple(
        want[k] for k in ("method", "target", "success", "steps")
    )
    assert [(p.index, p.label) for p in got.before] == [(p["index"], p["label"]) for p in want["before"]]
    assert [p.probability for p in got.before] == pytest.approx(
        [p["probability"] for p in want["before"]], abs=1e-3
    )
    assert len(got.after) == len(want["after"]) == 5 and got.after[0].index == want["after"][0]["index"]
    assert 1 <= got.linf <= ATTACK["eps"] and (final.width, final.height) == (ref.width, ref.height) == (
        224,
        224,
    )
    assert decode_image(got.perturbation).shape == decode_image(want["perturbation"]).shape == (224, 224, 3)


def test_a_sigkilled_workers_job_finishes_on_the_other_worker(
    cluster: Cluster, images: tuple[bytes, bytes]
) -> None:
    before = {w.id: w.metric("atelier_job_attempts_total", kind="gatys") or 0.0 for w in cluster.workers}
    job = submit_gatys(cluster.a, images, RERUN).json()
    _events_until(cluster.b, job["id"], lambda d: d.get("progress") is not None)
    owner = cluster.redis.client().hget(f"atelier:job:{job['id']}", "worker").decode()
    victim = next(w for w in cluster.workers if w.id == owner)
    survivor = next(w for w in cluster.workers if w is not victim)
    victim.sigkill()
    events = read_events(cluster.b, f"/v1/jobs/{job['id']}/events")  # replayed from the start, then live
    done = events[-1]["data"]
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    # The first attempt's steps, then the second's from step 1 again (the stream shows the re-run live).
    attempts = [e["data"]["attempts"] for e in events if e["data"].get("progress")]
    assert attempts == sorted(attempts) and set(attempts) == {1, 2}
    assert cluster.a.http.get(f"/v1/jobs/{job['id']}/result").headers["content-type"] == "image/png"
    assert survivor.metric("atelier_job_attempts_total", kind="gatys") == before[survivor.id] + 1
    # The victim's heartbeat is gone. The gauge is set on the survivor's once-a-second tick, so the re-run
    # can finish before the first tick that no longer counts the victim.
    wait_until(
        lambda: survivor.metric("atelier_redis_workers") == 1.0, 5.0, "the workers gauge drops the victim"
    )
    cluster.workers.remove(victim)


def test_redis_killed_mid_job_is_a_clear_error_never_a_hang(
    cluster: Cluster, images: tuple[bytes, bytes]
) -> None:
    job = submit_gatys(cluster.a, images, ENDLESS).json()
    with cluster.b.http.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data:") and json.loads(line[5:]).get("progress"):
                break
        cluster.redis.kill()  # no persistence: everything the queue held is gone
        last = next(json.loads(x[5:]) for x in lines if x.startswith("data:") and '"failed"' in x)
    assert last["error"]["reason"] == "not_ready" and "Redis" in last["error"]["message"], last
    down = cluster.a.http.get(f"/v1/jobs/{job['id']}")
    assert down.status_code == 503 and "Redis" in down.json()["error"]["message"]
    refused = submit_gatys(cluster.a, images, {"size": 48, "steps": 2})
    assert refused.status_code == 503 and refused.json()["error"]["reason"] == "not_ready"

    cluster.redis.start()  # same port, empty
    assert cluster.b.http.get(f"/v1/jobs/{job['id']}").status_code == 404  # its state was lost with Redis
    fresh = submit_gatys(cluster.a, images, {"size": 48, "steps": 2})
    assert fresh.status_code == 202, fresh.text
    events = read_events(cluster.b, f"/v1/jobs/{fresh.json()['id']}/events")
    assert events[-1]["data"]["state"] == "succeeded"  # the workers reconnected on their own


def sse_blocks(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """SSE blocks as {event, id, data} from a stream's lines, as they arrive."""
    current: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in current:
                yield current
            current = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            current[key] = json.loads(value) if key == "data" else value.strip()


def test_a_draining_api_leaves_its_job_streams_to_the_workers(
    cluster: Cluster, images: tuple[bytes, bytes]
) -> None:
    """SIGTERM to A while its gRPC stream and an SSE stream follow a job on a worker: the gRPC stream ends
    UNAVAILABLE, the SSE stream with a last ``shutting_down`` event, both naming the job, which goes on."""
    options = Struct()
    options.update(RERUN)
    request = pb.GatysRequest(content=images[0], styles=[images[1]], options=options)
    with (
        grpc.insecure_channel(cluster.a.grpc_target) as ca,
        grpc.insecure_channel(cluster.b.grpc_target) as cb,
    ):
        stream = pb_grpc.AtelierStub(ca).Gatys(request, timeout=60)
        job_id = next(e for e in stream if e.HasField("progress")).job_id
        with cluster.a.http.stream("GET", f"/v1/jobs/{job_id}/events") as r:
            blocks = sse_blocks(r.iter_lines())
            next(b for b in blocks if b["data"].get("progress"))  # A's SSE stream follows the job live
            cluster.a.terminate()  # SIGTERM while the job runs on a worker
            error: Any = rpc_error(stream)
            rest = list(blocks)  # to the response's end: it ends cleanly, the connection is not cut
        assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error.details())
        assert job_id in error.details() and "WatchJob" in error.details(), error.details()
        assert [b["event"] for b in rest] == ["progress"] * (len(rest) - 1) + ["shutting_down"], rest
        last = rest[-1]["data"]
        assert (last["id"], last["state"], last["reason"]) == (job_id, "running", "shutting_down"), last
        assert f"GET /v1/jobs/{job_id}" in last["message"] and "not cancelled" in last["message"], last
        events = list(watch(pb_grpc.AtelierStub(cb), job_id))  # replayed from the start, then live
    assert events[-1].state == "succeeded" and events[-1].result.image
    assert cluster.a.proc.wait(30) == 0
    done = cluster.b.http.get(f"/v1/jobs/{job_id}").json()
    assert done["state"] == "succeeded" and done["attempts"] == 1, done
