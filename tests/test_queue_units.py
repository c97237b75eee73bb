"""The shared queue's pieces against a real redis-server, in this process: the job spec, result and error
codecs, the state-change scripts (per-key cap, full queue, cancel, claims by live and lost workers, the
lost-job sweep, max attempts), a worker's run of a real Gatys job (cancel within one iteration, drain hands the job
back), the gauges, an unreachable Redis as NotReady (503), never a hang, and a stalled Redis (SIGSTOP)
holding up only the request that waits on it, never the server's event loop."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from service.core import errors
from service.core.imageio import encode_image
from service.server.errors import INTERNAL, status_for
from service.server.jobs.manager import JobManager, JobOutput, JobState
from service.server.jobs.redis_codec import decode_error, decode_result, encode_error, encode_result
from service.server.jobs.redis_jobs import RedisJobs
from service.server.jobs.redis_monitor import QueueMonitor
from service.server.jobs.redis_store import QueueConfig
from service.server.jobs.redis_worker import QueueWorker
from service.server.jobs.work import JobSpec, JobWork
from service.server.metrics import Metrics
from service.server.plane.config import PlaneConfig
from service.server.plane.slow_jobs import gatys_job
from service.server.shutdown import calls_in_flight
from service.settings import Settings
from tests.liveserver import StartServer
from tests.queuekit import RedisServer, free_port
from tests.test_rest_jobs import wait_until

ENDLESS = {"size": 48, "steps": 10_000}


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    redis = RedisServer().start()
    yield redis
    redis.kill()


def config(url: str, **overrides: Any) -> QueueConfig:
    base: dict[str, Any] = dict(url=url, max_attempts=2, queue_limit=3, jobs_per_key=1, max_runtime_s=60,
                                result_ttl_s=60, heartbeat_s=1.0)  # fmt: skip
    return QueueConfig(**{**base, **overrides})


@pytest.fixture
def jobs(server: RedisServer) -> Iterator[RedisJobs]:
    server.client().flushall()
    local = JobManager(workers=1, queue_limit=1, max_runtime_s=60, result_ttl_s=60, result_max_count=10,
                       result_max_bytes=1 << 20)  # fmt: skip
    queue = RedisJobs(config(server.url), local)
    yield queue
    queue.close()
    local.close()


def spec_work(kind: str = "gatys") -> JobWork:
    def never(token: Any, progress: Any) -> Any:
        raise AssertionError("a shared job's closure never runs on the API side")

    return JobWork(JobSpec(kind, {"options": {"steps": 2}, "fmt": "png", "quality": 90, "backbone": None},
                           {"content": [b"c"], "style": [b"s1", b"s2"]}), never)  # fmt: skip


def claim(jobs: RedisJobs, job_id: str, worker: str, lease_s: float, heartbeat: bool = True) -> list[Any]:
    """The claim script as a worker runs it, after a heartbeat that wrote its lease (``heartbeat``)."""
    cfg = jobs.cfg
    if heartbeat:
        jobs.client.zadd(cfg.key("workers"), {worker: time.time() + lease_s})
    from service.server.jobs.redis_codec import lost_error
    from service.server.jobs.redis_store import SCRIPTS

    script = jobs.client.register_script(SCRIPTS["claim"])
    got = script(args=[cfg.prefix, job_id, worker, time.time(), lease_s, cfg.max_attempts, cfg.active_ttl_s,
                       lost_error(cfg.max_attempts)])  # fmt: skip
    return [g.decode() if isinstance(g, bytes) else g for g in got]


def test_a_spec_round_trips_through_redis_fields() -> None:
    spec = spec_work().spec
    again = JobSpec.from_fields(spec.to_fields())
    assert again == spec and again.image("content") == b"c" and again.images["style"] == [b"s1", b"s2"]
    with pytest.raises(errors.InvalidArgument):
        JobSpec("gatys", {"options": {"x": float("nan")}}).to_fields()


def test_a_result_with_an_extra_image_is_stored_once_outside_its_metadata() -> None:
    """An attack's result: the adversarial image and the perturbation in the one stored value, the
    outcome's JSON values in the metadata (which the terminal event carries), no image bytes there."""
    perturbation = bytes(range(256)) * 8
    before = [{"index": 285, "label": "Egyptian cat", "probability": 0.5}]
    out = JobOutput(b"PNG-adversarial", "image/png", 224, 224,
                    {"method": "pgd", "target": 605, "before": before, "perturbation": perturbation,
                     "map": np.zeros(2)})  # fmt: skip
    meta, data = encode_result(out)
    assert data == out.data + perturbation and len(meta) < 400 and "perturbation" in meta
    again = decode_result(meta, data)
    assert again is not None and again.data == out.data and again.extra["perturbation"] == perturbation
    assert {k: again.extra[k] for k in ("method", "target", "before")} == {"method": "pgd", "target": 605,
                                                                          "before": before}  # fmt: skip
    assert "map" not in again.extra  # an array does not cross (saliency never does)
    plain = JobOutput(b"PNG", "image/png", 4, 4)
    assert decode_result(*encode_result(plain)) == plain


def test_errors_cross_with_their_class_and_public_message() -> None:
    busy = decode_error(encode_error(errors.ResourceExhausted("full", retry_after_s=7.0)))
    assert isinstance(busy, errors.ResourceExhausted) and busy.retry_after_s == 7.0
    weights = decode_error(encode_error(errors.WeightsNotFound("no file /srv/secret/vgg16.pth")))
    assert isinstance(weights, errors.WeightsNotFound) and "/srv/secret" not in weights.message
    bug = decode_error(encode_error(KeyError("internal detail")))
    assert status_for(bug) == INTERNAL and "internal detail" not in str(bug)  # type: ignore[arg-type]


def test_submit_caps_per_key_and_queue_and_hides_other_keys_jobs(jobs: RedisJobs) -> None:
    job = jobs.submit_work(spec_work(), owner="alice")
    assert job.state is JobState.QUEUED and job.attempts == 0 and jobs.queued == 1
    with pytest.raises(errors.ResourceExhausted, match="'alice' already has 1 jobs"):
        jobs.submit_work(spec_work(), owner="alice")
    with pytest.raises(errors.UnknownJob) as other:
        jobs.get(job.id, owner="bob")
    with pytest.raises(errors.UnknownJob) as never:
        jobs.get("0" * 32, owner="bob")
    assert str(other.value).replace(job.id, "ID") == str(never.value).replace("0" * 32, "ID")
    jobs.submit_work(spec_work(), owner="bob")
    jobs.submit_work(spec_work())
    with pytest.raises(errors.ResourceExhausted, match="3 jobs waiting"):
        jobs.submit_work(spec_work())
    assert jobs.cancel(job.id, "test", owner="alice").state is JobState.CANCELLED  # queued: at once
    jobs.cancel(jobs.submit_work(spec_work(), owner="alice").id, owner="alice")  # alice's slot is free
    with pytest.raises(errors.UnknownJob, match="has finished and its result has expired"):
        jobs.client.delete(jobs.cfg.job_key(job.id))
        jobs.get(job.id, owner="alice")


def test_a_claim_leaves_a_live_workers_job_and_reruns_a_lost_ones(jobs: RedisJobs) -> None:
    job = jobs.submit_work(spec_work())
    assert claim(jobs, job.id, "w1", lease_s=30) == ["run", 1]
    assert claim(jobs, job.id, "w2", lease_s=30) == ["busy"]  # w1 is alive: nobody else runs it
    assert jobs.get(job.id).state is JobState.RUNNING
    jobs.client.zadd(jobs.cfg.key("workers"), {"w1": time.time() - 1})  # w1's lease ran out
    assert claim(jobs, job.id, "w2", lease_s=30) == ["run", 2]
    assert jobs.get(job.id).attempts == 2
    jobs.client.zadd(jobs.cfg.key("workers"), {"w2": time.time() - 1})
    assert claim(jobs, job.id, "w3", lease_s=30) == ["failed"]  # lost max_attempts (2) times
    failed = jobs.get(job.id)
    assert failed.state is JobState.FAILED and "lost" in str(failed.latest.error)
    assert status_for(failed.latest.error) == INTERNAL  # type: ignore[arg-type]


def test_the_sweep_requeues_a_lost_workers_job_then_fails_it(jobs: RedisJobs) -> None:
    metrics = Metrics()
    monitor = QueueMonitor(jobs.cfg, metrics)
    job = jobs.submit_work(spec_work())
    claim(jobs, job.id, "w1", lease_s=30)
    assert monitor.tick() == [] and metrics.redis_workers._value.get() == 1  # type: ignore[attr-defined]
    jobs.client.zadd(jobs.cfg.key("workers"), {"w1": time.time() - 1})
    assert monitor.tick() == [job.id]
    assert jobs.get(job.id).state is JobState.QUEUED  # watchers see it wait again, not "running"
    assert metrics.redis_queue_depth._value.get() == 1 and metrics.redis_workers._value.get() == 0  # type: ignore[attr-defined]
    assert metrics.redis_queue_oldest_age._value.get() >= 0  # type: ignore[attr-defined]
    claim(jobs, job.id, "w2", lease_s=-1)  # runs on a worker whose lease is already gone
    assert monitor.tick() == [job.id] and jobs.get(job.id).state is JobState.FAILED
    monitor.close()


def test_a_claim_renews_the_workers_lease(jobs: RedisJobs) -> None:
    """Redis restarted empty: a worker claims a job before its next heartbeat has re-written its lease.
    The claim itself is a sign of life, so a sweep right after must not take the job from it."""
    monitor = QueueMonitor(jobs.cfg, Metrics())
    job = jobs.submit_work(spec_work())
    assert claim(jobs, job.id, "w1", lease_s=30) == ["run", 1]
    jobs.client.zrem(jobs.cfg.key("workers"), "w1")  # the lease is gone, the worker is not
    other = jobs.submit_work(spec_work())
    assert claim(jobs, other.id, "w1", lease_s=30, heartbeat=False) == ["run", 1]  # the claim renews it
    assert monitor.tick() == [] and jobs.get(other.id).state is JobState.RUNNING
    assert jobs.get(job.id).state is JobState.RUNNING
    lease = jobs.client.zscore(jobs.cfg.key("workers"), "w1")
    assert lease is not None and lease > time.time() + 20
    monitor.close()


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[bytes, bytes]:
    return encode_image(chelsea[::8, ::8], "jpeg"), encode_image(coffee[::8, ::8], "jpeg")


def _worker_and_job(jobs: RedisJobs, images: tuple[bytes, bytes]) -> tuple[QueueWorker, str]:
    settings = Settings(_env_file=None, device="cpu", max_side_slow=256)
    slow = PlaneConfig.from_settings(settings, warmup=False).slow()
    worker = QueueWorker(jobs.cfg, slow, Metrics())
    worker._heartbeat()
    job = jobs.submit_work(gatys_job(slow, images[0], [images[1]], ENDLESS, "png", 90, None))
    return worker, job.id


def _progress_step(jobs: RedisJobs, job_id: str) -> int:
    raw = jobs.client.hget(jobs.cfg.job_key(job_id), "progress")
    return int(json.loads(raw)["step"]) if raw else 0


def wait_for_step(jobs: RedisJobs, job_id: str, step: int, timeout: float = 60) -> None:
    """Block on the job's event stream (as a replica's watcher does) until it reports ``step``."""
    stream, after = jobs.cfg.job_key(job_id, ":ev"), "0-0"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for _, entries in jobs.client.xread({stream: after}, block=1000) or []:
            for entry_id, fields in entries:
                after = entry_id
                if json.loads(fields[b"e"]).get("step", 0) >= step:
                    return
    raise AssertionError(f"job {job_id} never reported step {step}")


def test_a_cancel_reaches_the_worker_within_one_iteration(
    jobs: RedisJobs, images: tuple[bytes, bytes]
) -> None:
    worker, job_id = _worker_and_job(jobs, images)
    run = threading.Thread(target=worker.run_job, args=(job_id,))
    run.start()
    wait_for_step(jobs, job_id, 2)
    jobs.cancel(job_id, "by the test")
    seen = _progress_step(jobs, job_id)
    run.join(60)
    done = jobs.get(job_id)
    assert done.state is JobState.CANCELLED and "by the test" in str(done.latest.error)
    assert _progress_step(jobs, job_id) <= seen + 1  # the next report read the flag


def test_a_draining_worker_hands_its_running_job_back(jobs: RedisJobs, images: tuple[bytes, bytes]) -> None:
    worker, job_id = _worker_and_job(jobs, images)
    run = threading.Thread(target=worker.run_job, args=(job_id,))
    run.start()
    wait_for_step(jobs, job_id, 1)
    worker.drain(grace_s=0)
    run.join(60)
    back = jobs.get(job_id)
    assert back.state is JobState.QUEUED and back.attempts == 1
    messages = jobs.client.llen(f"{jobs.cfg.namespace}:{jobs.cfg.queue_name}")
    assert messages == 2  # the submit's message (never consumed here) and the drain's new one


def test_an_unreachable_redis_is_not_ready_never_a_hang() -> None:
    local = JobManager(workers=1, queue_limit=1, max_runtime_s=60, result_ttl_s=60, result_max_count=10,
                       result_max_bytes=1 << 20)  # fmt: skip
    queue = RedisJobs(config(f"redis://127.0.0.1:{free_port()}/0"), local)
    for call in (lambda: queue.submit_work(spec_work()), lambda: queue.get("0" * 32)):
        with pytest.raises(errors.NotReady, match=r"Redis at 127\.0\.0\.1:\d+\) cannot be reached") as exc:
            call()
        assert status_for(exc.value).http == 503
    queue.close()
    local.close()


def test_a_stalled_redis_holds_up_only_the_calls_that_need_it(
    server: RedisServer, start_server: StartServer
) -> None:
    api = start_server(queue_url=server.url, warmup=False)
    assert server.proc is not None
    os.kill(
        server.proc.pid, signal.SIGSTOP
    )  # Redis accepts bytes and answers nothing: a stall, not a refusal
    try:
        with ThreadPoolExecutor(1) as pool:
            lookup = pool.submit(api.http.get, f"/v1/jobs/{'0' * 32}")
            wait_until(lambda: calls_in_flight(api.plane) == 1, 30, "the job lookup never arrived")
            # The lookup waits on Redis in a thread; the event loop answers everything else meanwhile.
            assert api.http.get("/healthz", timeout=3.0).status_code == 200
            assert api.http.get("/v1/styles", timeout=3.0).status_code == 200
            assert not lookup.done()
            os.kill(server.proc.pid, signal.SIGCONT)
            answer = lookup.result(timeout=30)
        assert answer.status_code == 404 and "No job with id" in answer.json()["error"]["message"]
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
