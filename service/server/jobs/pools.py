"""The slow path's worker pools: one for renders, one for saliency.

A render (Gatys, DeepDream) holds a worker for minutes, up to the run-time cap; a saliency call takes
seconds and its caller waits for the answer. In one pool, a few long renders made every saliency call
answer RESOURCE_EXHAUSTED, so each has its own ``JobManager``, sized by its own settings:

| pool | kinds | settings | ``queue`` label of the queue metrics |
|---|---|---|---|
| ``renders`` | gatys, deepdream | ``job_workers``, ``job_queue_limit`` | ``jobs`` (as before) |
| ``saliency`` | saliency | ``saliency_workers``, ``saliency_queue_limit`` | ``saliency`` |

Both share the run-time cap, the result limits and the per-key cap (each pool counts its own jobs).
``plane.jobs`` stays the render pool: job ids (REST ``/v1/jobs/{id}``, gRPC streams) are renders only;
saliency jobs are awaited inside their call (``call``) and never handed out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

from service.core.errors import ShuttingDown
from service.server.jobs.manager import SHUTDOWN_REASON, JobFunction, JobManager, JobOutput, JobState
from service.server.metrics import Metrics

if TYPE_CHECKING:
    from service.server.plane.config import PlaneConfig

__all__ = ["JobPools"]


class JobPools:
    """The render pool and the saliency pool of one data plane."""

    def __init__(self, config: PlaneConfig, metrics: Metrics | None) -> None:
        def pool(workers: int, queue_limit: int, kinds: tuple[str, ...], queue: str) -> JobManager:
            return JobManager(
                workers=workers,
                queue_limit=queue_limit,
                max_runtime_s=config.job_max_runtime_s,
                result_ttl_s=config.job_result_ttl_s,
                result_max_count=config.job_result_max_count,
                result_max_bytes=config.job_result_max_bytes,
                metrics=metrics,
                kinds=kinds,
                jobs_per_owner=config.jobs_per_key,
                queue=queue,
            )

        self.renders = pool(config.job_workers, config.job_queue_limit, ("gatys", "deepdream"), "jobs")
        self.saliency = pool(config.saliency_workers, config.saliency_queue_limit, ("saliency",), "saliency")
        self._shutting_down = False

    @property
    def pools(self) -> tuple[JobManager, ...]:
        return (self.renders, self.saliency)

    async def call(
        self, pool: JobManager, kind: str, fn: JobFunction, deadline: float | None, owner: str | None
    ) -> JobOutput:
        """Run ``fn`` as a job of ``pool`` and wait for its output (a call, not a job the caller keeps).

        The job is cancelled if the caller goes away (the awaiting task is cancelled, e.g. by a deadline).
        Raises the job's own error; a job cut short by shutdown raises ``ShuttingDown`` (503 / UNAVAILABLE,
        so the caller retries elsewhere) rather than ``Cancelled``, which would blame the caller."""
        job = pool.submit(kind, fn, deadline, owner)
        try:
            await job.final()
        except BaseException:
            pool.cancel(job.id, "the caller went away")
            raise
        if job.state is JobState.CANCELLED and self._shutting_down:
            raise ShuttingDown(f"The server is shutting down; the {kind} call was stopped. Retry it.")
        return job.output()

    def drain(self, grace_s: float, stop_by: float) -> None:
        """Every pool's ``JobManager.drain`` at the same time (blocking: run it in a thread), so the
        pools share one grace instead of adding theirs up."""
        self._shutting_down = True
        threads = [
            threading.Thread(
                target=p.drain, args=(grace_s, stop_by, SHUTDOWN_REASON), name=f"drain-{p.queue}"
            )
            for p in self.pools
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, stop_by - time.monotonic()) + 1.0)

    async def adrain(self, grace_s: float, stop_by: float) -> None:
        await asyncio.to_thread(self.drain, grace_s, stop_by)

    def close(self, timeout: float) -> None:
        """Refuse new jobs, cancel what is left and wait up to ``timeout`` in all for the workers."""
        self._shutting_down = True
        end = time.monotonic() + timeout
        for p in self.pools:
            p.close(max(0.0, end - time.monotonic()))
