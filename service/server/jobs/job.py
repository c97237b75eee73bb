"""One job of the slow path: its state, its progress events (for any number of asyncio subscribers), and
its result. Created and driven by ``service.server.jobs.manager.JobManager``."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from service.core.errors import NotReady
from service.core.progress import CancelToken, Progress, ProgressCallback

HISTORY = 256  # events held per job for subscribers (replay on subscribe, slack for slow readers)
PREVIEWS_KEPT = 8  # of those, how many newest keep their preview JPEG


class JobState(StrEnum):
    """A job's state; the values are the wire strings (REST ``state``, gRPC ``RenderEvent.state``, the
    ``state`` label of the job metrics), so a ``JobState`` is used wherever a string was."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEADLINE_EXCEEDED = "deadline_exceeded"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


ACTIVE_STATES: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING)
TERMINAL_STATES: tuple[JobState, ...] = (
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.DEADLINE_EXCEEDED,
)


@dataclass(frozen=True)
class JobOutput:
    """What a job produces: encoded bytes plus anything a transport reports alongside them."""

    data: bytes
    content_type: str
    width: int = 0
    height: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobEvent:
    """A snapshot of a job, published on every progress report and on every state change.

    ``progress`` never carries the preview array; a requested preview arrives JPEG-encoded in
    ``preview_jpeg`` (encoded in the worker thread, not on the event loop).
    """

    job_id: str
    kind: str
    state: JobState
    progress: Progress | None = None
    preview_jpeg: bytes | None = None
    output: JobOutput | None = None
    error: BaseException | None = None
    duration_s: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal


JobFunction = Callable[[CancelToken, ProgressCallback], JobOutput]


class Job:
    """What the transports (and tests) read of a job, whichever manager holds it: the in-process
    ``LocalJob`` of ``JobManager`` or the Redis-backed ``RemoteJob`` of the shared queue
    (``service/server/jobs/redis_jobs.py``). Times are ``time.monotonic()`` values of this process;
    ``attempts`` counts the starts of the job's work (more than 1 only when a lost worker's job re-ran).
    """

    id: str
    kind: str
    owner: str | None  # the API key name that submitted it; None without keys (anyone may see it)
    created: float
    started: float | None
    finished: float | None
    attempts: int
    shared = False  # on the shared queue (Redis): it outlives this replica, which never cancels it on exit

    @property
    def latest(self) -> JobEvent:
        raise NotImplementedError

    @property
    def state(self) -> JobState:
        return self.latest.state

    def output(self) -> JobOutput:
        """The result of a succeeded job; raises the job's error otherwise (NotReady while unfinished)."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        """Block (a thread, never the event loop) until the job is finished."""
        raise NotImplementedError

    def events(self, from_start: bool = True) -> AsyncIterator[JobEvent]:
        """The job's events in order, ending after the terminal one."""
        raise NotImplementedError

    async def final(self) -> JobEvent:
        """Wait (asynchronously) for the terminal event."""
        last = self.latest
        async for event in self.events():
            last = event
        return last


class LocalJob(Job):
    """One submitted unit of slow work of this process. Created by ``JobManager.submit``."""

    def __init__(self, kind: str, fn: JobFunction, deadline: float | None, owner: str | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.kind = kind
        self.owner = owner
        self.fn = fn
        self.token = CancelToken(deadline=deadline)
        self.created = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        self.attempts = 0  # 1 once a worker took it: an in-process job never re-runs
        self._lock = threading.Lock()
        self._version = 0
        self._event = JobEvent(self.id, kind, JobState.QUEUED)
        self._history: collections.deque[tuple[int, JobEvent]] = collections.deque(maxlen=HISTORY)
        self._history.append((0, self._event))
        self._done = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    # --- reading --------------------------------------------------------------------------------------
    @property
    def latest(self) -> JobEvent:
        return self._event

    @property
    def result_bytes(self) -> int:
        out = self._event.output
        return len(out.data) if out is not None else 0

    def snapshot(self) -> tuple[int, JobEvent]:
        with self._lock:
            return self._version, self._event

    def output(self) -> JobOutput:
        event = self._event
        if event.state is JobState.SUCCEEDED and event.output is not None:
            return event.output
        if event.error is not None:
            raise event.error
        raise NotReady(f"Job {self.id} is {event.state}; its result is not ready yet.")

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    async def events(self, from_start: bool = True) -> AsyncIterator[JobEvent]:
        """Yield the job's events in order, ending after the terminal one.

        ``from_start``: begin with the oldest event still held (the last ``HISTORY`` events, so a stream
        opened just after ``submit`` misses nothing); otherwise with the latest one. A subscriber that falls
        more than ``HISTORY`` events behind skips ahead instead of holding the worker back.
        """
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        entry = (loop, wake)
        with self._lock:
            self._waiters.append(entry)
            after = (self._history[0][0] if from_start else self._version) - 1
        try:
            while True:
                wake.clear()
                with self._lock:
                    pending = [(v, e) for v, e in self._history if v > after]
                for version, event in pending:
                    after = version
                    yield event
                    if event.terminal:
                        return
                if not pending:
                    await wake.wait()
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)

    # --- writing (manager and worker) -----------------------------------------------------------------
    def _publish(self, **changes: Any) -> JobEvent:
        if changes.get("state") in TERMINAL_STATES:
            changes.setdefault("preview_jpeg", None)  # the result replaces any preview
        with self._lock:
            self._event = replace(self._event, **changes)
            self._version += 1
            event = self._event
            self._history.append((self._version, event))
            # Previews are the bulky part: keep them on the newest few events only, none once finished.
            keep = 0 if event.terminal else PREVIEWS_KEPT
            for i in range(len(self._history) - keep):
                v, e = self._history[i]
                if e.preview_jpeg is not None:
                    self._history[i] = (v, replace(e, preview_jpeg=None))
            waiters = list(self._waiters)
        if event.terminal:
            self._done.set()
        for loop, wake in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: its subscriber is gone
                loop.call_soon_threadsafe(wake.set)
        return event
