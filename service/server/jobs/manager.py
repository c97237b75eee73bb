"""The slow path: a bounded queue of jobs run by a fixed pool of worker threads.

Each job has an id (uuid4 hex), a kind (``gatys``, ``deepdream``, ``saliency``), a state
(queued -> running -> succeeded | failed | cancelled | deadline_exceeded), a stream of progress events, and
on success a result. Submitting when every worker is busy and ``queue_limit`` jobs already wait fails at
once with ``ResourceExhausted`` (with a retry hint) rather than queueing without bound.

Cancellation and deadlines go through the job's ``CancelToken``: the algorithm checks it every iteration,
so ``cancel(id)`` (or the client going away, or the deadline) frees the worker within one iteration. The
run-time cap (``max_runtime_s``) is folded into the same token when the job starts.

Progress is published from the worker thread and consumed on an asyncio loop. Subscribers see the latest
event (a slow subscriber skips intermediate steps instead of buffering them) and always the final one;
any number may subscribe, and a late subscriber first gets the latest event again.

Finished jobs are kept for ``result_ttl_s`` and at most ``result_max_count`` jobs / ``result_max_bytes``
of results (oldest evicted first); asking for an evicted id says it expired, an unknown id that it never
existed.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import replace

from service.core.errors import (
    AtelierError,
    Cancelled,
    DeadlineExceeded,
    NotReady,
    ResourceExhausted,
    UnknownJob,
    quoted,
)
from service.core.imageio import encode_image
from service.core.progress import CancelToken, Progress, ProgressCallback
from service.server.jobs.job import (
    TERMINAL_STATES,
    Job,
    JobEvent,
    JobFunction,
    JobOutput,
    JobState,
    LocalJob,
)
from service.server.jobs.owners import OwnerLedger
from service.server.jobs.work import JobWork
from service.server.metrics import Metrics

__all__ = [
    "TERMINAL_STATES",
    "Job",
    "JobEvent",
    "JobFunction",
    "JobManager",
    "JobOutput",
    "JobState",
    "JobWork",
    "LocalJob",
]

log = logging.getLogger(__name__)

_EXPIRED_MEMORY = 10_000  # evicted ids remembered to tell "expired" from "never existed"
SHUTDOWN_REASON = "server shutting down"  # what a job cut short by SIGTERM reports (Cancelled's message)


def _spent(token: CancelToken, progress: ProgressCallback) -> JobOutput:
    """What a finished job's ``fn`` becomes: its work ran (or never will) and its inputs are released."""
    raise RuntimeError("this job has finished; its work cannot run again")


def _drop_tracebacks(error: BaseException | None) -> None:
    """Cut the traceback of ``error`` and of the errors it was raised from (logged already if a bug)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


class JobManager:
    """Bounded worker pool for slow jobs. Thread-safe; ``submit``/``cancel``/``get`` never block.

    The limits have no defaults: the server passes its ``Settings`` (``job_*``) down, tests their own.
    """

    executor: Executor | None = None  # nothing here waits on I/O: ``queue_call`` calls it on the loop

    def __init__(
        self,
        *,
        workers: int,
        queue_limit: int,
        max_runtime_s: float,
        result_ttl_s: float,
        result_max_count: int,
        result_max_bytes: int,
        metrics: Metrics | None = None,
        kinds: tuple[str, ...] = ("gatys", "deepdream", "saliency"),
        jobs_per_owner: int = 0,  # the server passes Settings.jobs_per_key; 0: no cap
        queue: str = "jobs",  # the ``queue`` label of this pool's queue metrics (jobs/pools.py)
    ) -> None:
        if workers < 1 or queue_limit < 0:
            raise ValueError("workers must be >= 1 and queue_limit >= 0")
        self.workers = workers
        self.queue_limit = queue_limit
        self.max_runtime_s = max_runtime_s
        self.result_ttl_s = result_ttl_s
        self.result_max_count = result_max_count
        self.result_max_bytes = result_max_bytes
        self.metrics = metrics
        self.queue = queue
        self._lock = threading.Lock()
        self._jobs: dict[str, LocalJob] = {}
        self._finished: collections.OrderedDict[str, LocalJob] = collections.OrderedDict()
        # Evicted id -> its owner, so an expired job of another API key reads as never having existed.
        self._expired: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        self._owners = OwnerLedger(jobs_per_owner)  # per-key cap and fair dispatch (owners.py)
        self._pending: collections.deque[LocalJob] = collections.deque()
        self._wake = threading.Condition(self._lock)
        self._active: set[str] = set()  # ids of the jobs holding a worker
        self._closing = False
        self._mean_duration_s = 10.0  # running mean for the retry hint; starts at a guess
        if metrics is not None:
            for kind in kinds:
                metrics.prime_job_kind(kind)
            metrics.queue_depth.labels(queue=queue).set(0)  # zeros, not missing series, for a new pool
            metrics.queue_wait.labels(queue=queue)
            metrics.rejected.labels(queue=queue)
        self._threads = [
            threading.Thread(target=self._worker, name=f"atelier-job-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    # --- public API -----------------------------------------------------------------------------------
    def submit(
        self, kind: str, fn: JobFunction, deadline: float | None = None, owner: str | None = None
    ) -> LocalJob:
        """Queue ``fn(token, progress)`` as a job; ``deadline`` is a ``time.monotonic()`` value or None.
        ``owner``: the submitting API key's name (None without keys); only it may see the job.

        Raises ``ResourceExhausted`` when every worker is busy and the queue is full, or the owner holds
        its limit of jobs; ``NotReady`` while shutting down.
        """
        job = LocalJob(kind, fn, deadline, owner)
        with self._lock:
            if self._closing:
                raise NotReady("The server is shutting down and accepts no new jobs.")
            self._owners.admit(owner, self._retry_hint_locked())  # before the shared queue's own check
            if len(self._active) + len(self._pending) >= self.workers + self.queue_limit:
                retry = self._retry_hint_locked()
                self._owners.finished(owner, was_running=False)  # admitted above, never queued
                if self.metrics is not None:
                    self.metrics.rejected.labels(queue=self.queue).inc()
                raise ResourceExhausted(
                    f"The job queue is full ({len(self._pending)} waiting, {len(self._active)} running).",
                    retry_after_s=retry,
                )
            self._jobs[job.id] = job
            self._pending.append(job)
            self._gauges_locked()
            if self.metrics is not None:
                self.metrics.jobs.labels(kind=kind, state=JobState.QUEUED).inc()
            self._wake.notify()
        return job

    def submit_work(self, work: JobWork, deadline: float | None = None, owner: str | None = None) -> LocalJob:
        """``submit`` for a validated ``JobWork``: in this process, the closure runs (the spec is for the
        shared queue, ``redis_jobs.py``)."""
        return self.submit(work.spec.kind, work.fn, deadline, owner)

    def get(self, job_id: str, owner: str | None = None) -> LocalJob:
        """The job ``job_id``; with an ``owner`` (an API key name), only a job of that owner: another
        key's job answers exactly as an id that never existed, so ids reveal nothing across tenants."""
        with self._lock:
            self._evict_locked()
            job = self._jobs.get(job_id)
            if job is not None and (owner is None or job.owner == owner):
                return job
            if job is None and job_id in self._expired and owner in (None, self._expired[job_id]):
                raise UnknownJob(f"Job {job_id} has finished and its result has expired.")
        raise UnknownJob(f"No job with id {quoted(job_id)} exists.")

    def cancel(
        self, job_id: str, reason: str = "cancelled by the client", owner: str | None = None
    ) -> LocalJob:
        """Cancel a queued or running job (a finished job is left as it is) and return it."""
        job = self.get(job_id, owner)
        self._cancel(job, reason)
        return job

    def result(self, job_id: str, owner: str | None = None) -> JobOutput:
        return self.get(job_id, owner).output()

    def subscribe(self, job_id: str, owner: str | None = None) -> AsyncIterator[JobEvent]:
        return self.get(job_id, owner).events()

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> int:
        return len(self._active)

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new jobs, cancel queued and running ones, and wait up to ``timeout`` for the workers."""
        with self._lock:
            self._closing = True
            active = [j for j in self._jobs.values() if not j.latest.terminal]
            self._wake.notify_all()
        for job in active:
            self._cancel(job, "server shutdown")
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))

    def drain(self, grace_s: float, stop_by: float, reason: str = SHUTDOWN_REASON) -> None:
        """Shut down gracefully (blocking: call it from a thread). New jobs are refused and queued ones
        cancelled at once; running ones may finish for ``grace_s`` (never past ``stop_by``, a monotonic
        time), then are cancelled with ``reason``. A job whose worker has not stopped by ``stop_by`` (stuck
        inside one long iteration) is still reported cancelled, so no client waits on it forever."""
        with self._lock:
            self._closing = True
            queued = list(self._pending)
            self._wake.notify_all()
        for job in queued:
            self._cancel(job, reason)
        self._wait_idle(min(time.monotonic() + grace_s, stop_by))
        with self._lock:
            running = [j for j in self._jobs.values() if j.finished is None]
        for job in running:
            job.token.cancel(reason)
        self._wait_idle(stop_by)
        with self._lock:
            stuck = [j for j in self._jobs.values() if j.finished is None]
        for job in stuck:
            log.warning("job %s (%s) did not stop in time; reported cancelled (%s)", job.id, job.kind, reason)
            self._finish(job, JobState.CANCELLED, Cancelled(f"Work was cancelled ({reason})."), None)

    def _wait_idle(self, until: float) -> None:
        """Wait until no job is queued or running, or until the monotonic time ``until``."""
        with self._lock:
            while any(j.finished is None for j in self._jobs.values()):
                left = until - time.monotonic()
                if left <= 0:
                    return
                self._wake.wait(min(left, 0.05))  # woken by _finish; the timeout bounds a missed wake

    # --- internals ------------------------------------------------------------------------------------
    def _cancel(self, job: LocalJob, reason: str) -> None:
        job.token.cancel(reason)
        with self._lock:
            if job.state is not JobState.QUEUED:
                return  # running: the worker sees the token within one iteration; finished: nothing to do
            if job not in self._pending:
                # Still QUEUED but a worker has just taken it (it publishes RUNNING outside the lock):
                # that worker's first token check finishes it as cancelled, and owns its gauges.
                return
            self._pending.remove(job)
            self._gauges_locked()
            if self.metrics is not None:
                self.metrics.jobs.labels(kind=job.kind, state=JobState.QUEUED).dec()
        self._finish(job, JobState.CANCELLED, Cancelled(f"Job was cancelled ({reason})."), None)

    def _retry_hint_locked(self) -> float:
        # Roughly when a slot frees up: the mean job time scaled by how far back in line a new job would be.
        waiting = len(self._pending) + 1
        return round(max(1.0, self._mean_duration_s * waiting / self.workers), 1)

    def _gauges_locked(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(queue=self.queue).set(len(self._pending))

    def _worker(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return  # closing and nothing left
                job = self._owners.pick(self._pending)  # FIFO without keys; fair across keys with them
                self._active.add(job.id)
                self._gauges_locked()
            try:
                self._run(job)
            finally:
                with self._lock:  # normally released already, by _finish
                    self._active.discard(job.id)

    def _run(self, job: LocalJob) -> None:
        now = time.monotonic()
        job.started = now
        job.attempts = 1
        cap = now + self.max_runtime_s
        job.token.deadline = cap if job.token.deadline is None else min(job.token.deadline, cap)
        if self.metrics is not None:
            self.metrics.queue_wait.labels(queue=self.queue).observe(now - job.created)
            self.metrics.jobs.labels(kind=job.kind, state=JobState.QUEUED).dec()
            self.metrics.jobs.labels(kind=job.kind, state=JobState.RUNNING).inc()
        job._publish(state=JobState.RUNNING)

        def report(p: Progress) -> None:
            preview = None
            if p.preview is not None:
                preview = encode_image(p.preview, "jpeg", 85)
                p = replace(p, preview=None)
            job._publish(progress=p, preview_jpeg=preview)

        output: JobOutput | None = None
        state: JobState
        error: BaseException | None
        try:
            job.token.check()  # a job whose deadline passed while queued never starts
            output = job.fn(job.token, report)
        except Cancelled as exc:
            state, error = JobState.CANCELLED, exc
        except DeadlineExceeded as exc:
            state, error = JobState.DEADLINE_EXCEEDED, exc
        except AtelierError as exc:
            state, error = JobState.FAILED, exc
        except Exception as exc:
            log.error("job %s (%s) failed with an unexpected error", job.id, job.kind, exc_info=exc)
            state, error = JobState.FAILED, exc
        else:
            state, error = JobState.SUCCEEDED, None
        finally:
            if self.metrics is not None:
                self.metrics.jobs.labels(kind=job.kind, state=JobState.RUNNING).dec()
        self._finish(job, state, error, output)

    def _finish(
        self, job: LocalJob, state: JobState, error: BaseException | None, output: JobOutput | None
    ) -> None:
        with self._lock:
            if job.finished is not None:
                return  # a stuck job that drain() already reported cancelled, whose worker came back late
            job.finished = time.monotonic()
        # The work's closure holds the decoded inputs (a Gatys job's full-size styles): drop it now, not
        # when the result expires, so a finished or cancelled job keeps only its result. A kept error
        # keeps no traceback either: its frames would hold the same closure (and the run's tensors).
        job.fn = _spent
        _drop_tracebacks(error)
        duration = job.finished - job.started if job.started is not None else 0.0
        if self.metrics is not None:
            self.metrics.jobs_finished.labels(kind=job.kind, state=state).inc()
            if job.started is not None:
                self.metrics.job_duration.labels(kind=job.kind).observe(duration)
        with self._lock:
            if state is JobState.SUCCEEDED:
                self._mean_duration_s = 0.8 * self._mean_duration_s + 0.2 * duration
            # Free the worker slot before anyone hears the job ended: a caller that submits again as
            # soon as it has its result must find the slot free, not a full queue.
            self._owners.finished(job.owner, was_running=job.id in self._active)
            self._active.discard(job.id)
            self._finished[job.id] = job
            self._evict_locked()
            self._wake.notify_all()  # drain() waits for the pool to empty
        job._publish(state=state, error=error, output=output, duration_s=duration)

    def _evict_locked(self) -> None:
        now = time.monotonic()
        total = sum(j.result_bytes for j in self._finished.values())
        while self._finished:
            oldest_id, oldest = next(iter(self._finished.items()))
            age = now - (oldest.finished or now)
            if (
                age <= self.result_ttl_s
                and len(self._finished) <= self.result_max_count
                and total <= self.result_max_bytes
            ):
                break
            del self._finished[oldest_id]
            self._jobs.pop(oldest_id, None)
            total -= oldest.result_bytes
            self._expired[oldest_id] = oldest.owner
            if len(self._expired) > _EXPIRED_MEMORY:
                self._expired.popitem(last=False)
