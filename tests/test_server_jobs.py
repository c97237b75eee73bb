"""Job manager and micro-batcher: admission, cancellation, deadlines, retention, batching. No server."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from service.core.errors import Cancelled, InvalidArgument, ResourceExhausted, UnknownJob
from service.core.progress import CancelToken, ProgressCallback, ProgressClock
from service.server.jobs.manager import TERMINAL_STATES, JobEvent, JobManager, JobOutput, JobState
from service.server.metrics import Metrics
from service.server.plane.batching import MicroBatcher


def looping_job(started: threading.Event | None = None, steps: int = 1_000_000):
    """A job that reports progress and checks its token until cancelled (or ``steps`` pass)."""

    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        clock = ProgressClock(steps)
        for i in range(steps):
            if started is not None:
                started.set()
            cancel.check()
            progress(clock.report(i + 1, {"loss": 1.0 / (i + 1)}))
            threading.Event().wait(0.001)  # stands in for one iteration of real work
        return JobOutput(b"done", "text/plain")

    return run


def quick_job(payload: bytes = b"ok"):
    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        progress(ProgressClock(1).report(1))
        return JobOutput(payload, "text/plain")

    return run


def job_manager(**overrides: Any) -> JobManager:
    """A manager with this file's limits (one worker, one queue slot, results kept a minute)."""
    limits: dict[str, Any] = dict(
        workers=1,
        queue_limit=1,
        max_runtime_s=60.0,
        result_ttl_s=60.0,
        result_max_count=100,
        result_max_bytes=1 << 20,
    )
    return JobManager(**{**limits, **overrides})


@pytest.fixture
def manager():
    m = job_manager(metrics=Metrics())
    yield m
    m.close(timeout=5)


def test_job_succeeds_with_progress_and_result(manager: JobManager) -> None:
    job = manager.submit("gatys", quick_job(b"image"))
    assert job.wait(10)
    assert job.state == "succeeded"
    assert manager.result(job.id).data == b"image"
    assert manager.get(job.id) is job


def test_queue_full_is_resource_exhausted_with_retry_hint(manager: JobManager) -> None:
    started = threading.Event()
    running = manager.submit("gatys", looping_job(started))
    assert started.wait(10)
    manager.submit("gatys", looping_job())  # fills the one queue slot
    with pytest.raises(ResourceExhausted) as info:
        manager.submit("gatys", looping_job())
    assert info.value.retry_after_s >= 1.0
    manager.cancel(running.id)
    assert running.wait(10) and running.state == "cancelled"


def test_a_finished_job_has_already_freed_its_worker() -> None:
    """Whoever learns that a job ended may submit the next one at once: with no queue slots, a worker
    still held when the terminal event goes out would refuse it as a full queue."""
    m = job_manager(queue_limit=0)
    go = threading.Event()
    seen: list[tuple[str, int]] = []

    class Probe:  # stands in for a subscriber's event loop: told in the worker thread, as events go out
        def call_soon_threadsafe(self, callback: Any) -> None:
            seen.append((job.latest.state, m.running))

    def held(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        assert go.wait(10)
        return JobOutput(b"ok", "text/plain")

    try:
        job = m.submit("saliency", held)
        job._waiters.append((Probe(), threading.Event()))  # type: ignore[arg-type]
        go.set()
        assert job.wait(10) and job.state == "succeeded"
        assert seen[-1] == ("succeeded", 0), seen
        assert m.submit("saliency", quick_job()).wait(10)  # the one worker takes the next job
    finally:
        m.close(timeout=5)


def test_cancel_running_job_frees_worker_for_next(manager: JobManager) -> None:
    started = threading.Event()
    first = manager.submit("gatys", looping_job(started))
    second = manager.submit("gatys", quick_job())
    assert started.wait(10)
    assert second.state == "queued"
    manager.cancel(first.id)
    assert second.wait(10), "the queued job should run once the cancelled one frees the worker"
    assert first.state == "cancelled" and second.state == "succeeded"
    with pytest.raises(Cancelled):
        first.output()


def test_cancel_queued_job_never_runs(manager: JobManager) -> None:
    started = threading.Event()
    first = manager.submit("gatys", looping_job(started))
    assert started.wait(10)
    queued = manager.submit("deepdream", quick_job())
    manager.cancel(queued.id)
    assert queued.state == "cancelled" and queued.started is None
    manager.cancel(first.id)


def test_deadline_and_runtime_cap() -> None:
    m = job_manager(queue_limit=0, max_runtime_s=0.05)
    try:
        job = m.submit("gatys", looping_job())
        assert job.wait(10)
        assert job.state == "deadline_exceeded"
    finally:
        m.close()


def test_failed_job_keeps_typed_error(manager: JobManager) -> None:
    def bad(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        raise InvalidArgument("steps must be positive")

    job = manager.submit("gatys", bad)
    assert job.wait(10) and job.state == "failed"
    with pytest.raises(InvalidArgument):
        manager.result(job.id)


def test_unknown_and_expired_ids_are_told_apart() -> None:
    m = job_manager(queue_limit=4, result_max_count=1)
    try:
        first = m.submit("gatys", quick_job())
        assert first.wait(10)
        second = m.submit("gatys", quick_job())
        assert second.wait(10)
        with pytest.raises(UnknownJob, match="expired"):
            m.get(first.id)
        with pytest.raises(UnknownJob, match="No job"):
            m.get("0" * 32)
        assert m.get(second.id).state == "succeeded"
    finally:
        m.close()


def test_result_byte_cap_evicts_oldest() -> None:
    m = job_manager(queue_limit=4, result_max_bytes=10)
    try:
        a = m.submit("gatys", quick_job(b"x" * 8))
        assert a.wait(10)
        b = m.submit("gatys", quick_job(b"y" * 8))
        assert b.wait(10)
        with pytest.raises(UnknownJob, match="expired"):
            m.get(a.id)
        assert m.result(b.id).data == b"y" * 8
    finally:
        m.close()


def test_async_subscribers_see_progress_and_final_event(manager: JobManager) -> None:
    async def main() -> tuple[list[JobEvent], list[JobEvent]]:
        job = manager.submit("gatys", looping_job(steps=30))

        async def collect() -> list[JobEvent]:
            return [e async for e in manager.subscribe(job.id)]

        return await asyncio.gather(collect(), collect())

    first, second = asyncio.run(main())
    for events in (first, second):
        assert events[-1].state == "succeeded" and events[-1].output is not None
        steps = [e.progress.step for e in events if e.progress is not None]
        assert steps and steps == sorted(steps)


def test_close_cancels_running_jobs() -> None:
    m = job_manager(queue_limit=2)
    started = threading.Event()
    job = m.submit("gatys", looping_job(started))
    assert started.wait(10)
    m.close(timeout=10)
    assert job.state == "cancelled"


def test_job_metrics_count_states() -> None:
    metrics = Metrics()
    m = job_manager(queue_limit=1, metrics=metrics)
    try:
        assert m.submit("deepdream", quick_job()).wait(10)
    finally:
        m.close()
    value = metrics.registry.get_sample_value
    assert value("atelier_jobs_finished_total", {"kind": "deepdream", "state": "succeeded"}) == 1
    assert value("atelier_jobs", {"kind": "deepdream", "state": "running"}) == 0
    assert value("atelier_job_duration_seconds_count", {"kind": "deepdream"}) == 1


def test_job_states_are_an_enum_with_the_wire_strings() -> None:
    assert [s.value for s in JobState] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "deadline_exceeded",
    ]
    assert [s for s in JobState if s.terminal] == list(TERMINAL_STATES)
    assert not JobState.QUEUED.terminal and JobState.DEADLINE_EXCEEDED.terminal
    assert JobState("cancelled") is JobState.CANCELLED and f"{JobState.RUNNING}" == "running"
    m = job_manager()
    try:
        job = m.submit("gatys", quick_job())
        assert job.wait(10) and job.state is JobState.SUCCEEDED and job.latest.terminal
    finally:
        m.close()
    # Every state is a primed label value of the job metrics, spelled as on the wire.
    metrics = Metrics()
    metrics.prime_job_kind("gatys")
    value = metrics.registry.get_sample_value
    for state in ("queued", "running"):
        assert value("atelier_jobs", {"kind": "gatys", "state": state}) == 0
    for state in ("succeeded", "failed", "cancelled", "deadline_exceeded"):
        assert value("atelier_jobs_finished_total", {"kind": "gatys", "state": state}) == 0


# --- micro-batcher ------------------------------------------------------------------------------------


def _batcher(max_delay_s: float, fail: bool = False) -> tuple[MicroBatcher, list[int]]:
    sizes: list[int] = []

    def run_batch(model: str, batch: list[np.ndarray]) -> list[np.ndarray]:
        sizes.append(len(batch))
        if fail:
            raise RuntimeError("boom")
        return [x + 1 for x in batch]

    return MicroBatcher(run_batch, ThreadPoolExecutor(1), max_size=4, max_delay_s=max_delay_s), sizes


def test_batcher_groups_same_size_and_splits_sizes() -> None:
    batcher, sizes = _batcher(max_delay_s=0.5)

    async def main() -> list[np.ndarray]:
        small = [np.full((8, 8, 3), i, np.uint8) for i in range(4)]
        other = np.zeros((8, 16, 3), np.uint8)
        results = await asyncio.gather(*(batcher.submit("m", x) for x in [*small, other]))
        return [r.output for r in results]

    outs = asyncio.run(main())
    assert sorted(sizes) == [1, 4]  # four 8x8 inputs in one run, the 8x16 alone
    assert [int(o[0, 0, 0]) for o in outs[:4]] == [1, 2, 3, 4]  # each caller got its own output
    assert outs[4].shape == (8, 16, 3)


def test_batcher_disabled_runs_each_alone() -> None:
    batcher, sizes = _batcher(max_delay_s=0.0)

    async def main() -> None:
        await asyncio.gather(*(batcher.submit("m", np.zeros((4, 4, 3), np.uint8)) for _ in range(3)))

    asyncio.run(main())
    assert sizes == [1, 1, 1]


def test_batcher_failure_reaches_every_request() -> None:
    batcher, _ = _batcher(max_delay_s=0.2, fail=True)

    async def main() -> list[BaseException | object]:
        return await asyncio.gather(
            *(batcher.submit("m", np.zeros((4, 4, 3), np.uint8)) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_batcher_does_not_wait_when_nothing_is_upstream() -> None:
    sizes: list[int] = []

    def run_batch(model: str, batch: list[np.ndarray]) -> list[np.ndarray]:
        sizes.append(len(batch))
        return batch

    # A one-minute window: a lone request must not sit in it when no other request could join.
    batcher = MicroBatcher(run_batch, ThreadPoolExecutor(1), max_size=4, max_delay_s=60.0, upstream=lambda: 0)

    async def main() -> None:
        await asyncio.wait_for(batcher.submit("m", np.zeros((4, 4, 3), np.uint8)), timeout=30)

    asyncio.run(main())
    assert sizes == [1]


def test_late_subscriber_replays_history_and_previews_are_trimmed(manager: JobManager) -> None:
    def with_previews(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        clock = ProgressClock(20)
        for i in range(20):
            p = clock.report(i + 1, {"loss": 1.0})
            p.preview = np.zeros((8, 8, 3), np.uint8)
            progress(p)
        return JobOutput(b"done", "text/plain")

    job = manager.submit("gatys", with_previews)
    assert job.wait(10)

    async def collect(from_start: bool) -> list[JobEvent]:
        return [e async for e in job.events(from_start=from_start)]

    replay = asyncio.run(collect(True))
    assert [e.state for e in replay][:2] == ["queued", "running"] and replay[-1].state == "succeeded"
    assert [e.progress.step for e in replay if e.progress is not None][:20] == list(range(1, 21))
    assert not any(e.preview_jpeg for e in replay)  # a finished job holds no preview images
    assert [e.state for e in asyncio.run(collect(False))] == ["succeeded"]


def test_fast_path_admission_is_bounded() -> None:
    from service.server.plane.config import PlaneConfig
    from service.server.plane.dataplane import DataPlane
    from service.settings import Settings

    plane = DataPlane(PlaneConfig.from_settings(Settings(_env_file=None, fast_queue_limit=1, device="cpu")))

    async def main() -> None:
        async with plane._fast_slot():
            with pytest.raises(ResourceExhausted) as info:
                async with plane._fast_slot():
                    pass
            assert info.value.retry_after_s > 0
        async with plane._fast_slot():  # the slot is free again once the first call is done
            pass
        await plane.close(1.0)

    asyncio.run(main())
    assert plane.metrics.registry.get_sample_value("atelier_rejected_total", {"queue": "fast"}) == 1


def test_cancel_as_a_worker_takes_the_job_is_not_an_error() -> None:
    """A DELETE landing between a worker taking a job off the queue and that job going RUNNING (the
    worker publishes RUNNING outside the lock): the interleaving forced by calling the worker's steps."""
    metrics = Metrics()
    m = job_manager(metrics=metrics)
    started = threading.Event()
    ran: list[bool] = []

    def never_runs(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        ran.append(True)
        return JobOutput(b"no", "text/plain")

    try:
        busy = m.submit("gatys", looping_job(started))  # holds the one worker, so nothing else takes B
        assert started.wait(10)
        job = m.submit("deepdream", never_runs)
        with m._lock:  # what _worker does under the lock, then it releases it before _run
            taken = m._owners.pick(m._pending)
            m._active.add(taken.id)
        assert taken is job and job.state == "queued"
        assert m.cancel(job.id) is job  # raised ValueError from _pending.remove before the fix
        m._run(taken)  # the worker carries on: its first token check ends the job
        assert job.state == "cancelled" and not ran
        m.cancel(busy.id)
        assert busy.wait(10)
    finally:
        m.close(timeout=5)
    value = metrics.registry.get_sample_value
    assert value("atelier_jobs", {"kind": "deepdream", "state": "queued"}) == 0
    assert value("atelier_jobs_finished_total", {"kind": "deepdream", "state": "cancelled"}) == 1
    assert m.queued == 0 and m.running == 0
