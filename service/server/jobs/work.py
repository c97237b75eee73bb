"""Jobs as data: what a slow job is when it must cross a process boundary, and the interface both job
managers satisfy.

A job of the in-process ``JobManager`` is a closure (``JobFunction``) over decoded images and parsed
options. The shared queue (``redis_jobs.py``, run by ``atelier worker``) cannot ship a closure, so every
slow job is also described by a ``JobSpec``: its kind, its options as JSON values (the mapping that
passed the strict parser), and its input images as encoded bytes. The data plane validates a request once
(``prepare_*`` in ``plane/slow_jobs.py``, which returns the closure) and hands both to the manager as a
``JobWork``: the in-process manager runs the closure, the shared queue stores the spec, and a worker
rebuilds the closure from it with the same ``prepare_*`` function (``plane/slow_jobs.work_from_spec``).

``JobQueue`` is what the data plane and the transports call; ``JobManager`` and ``RedisJobs`` both
satisfy it, so the transports do not know which one serves them. Its methods are synchronous; code on
the event loop calls them through ``queue_call`` (or ``queue_call_soon``), which runs them in the queue's
``executor`` when it has one: a shared-queue call is Redis round trips, seconds long when Redis stalls
(bounded by the client's timeouts), and must not hold up every other request of the replica meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar

from service.core.errors import InvalidArgument
from service.server.jobs.job import Job, JobEvent, JobFunction, JobOutput

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
SPEC_FIELD = b"spec"  # the JSON part of a stored spec; every other field is one input image


@dataclass(frozen=True)
class JobSpec:
    """A slow job as plain data: ``kind`` (``gatys``, ``deepdream``, ``attack``), ``params`` (JSON
    values: the options mapping, format, quality, backbone; an attack's method and target) and
    ``images`` (named lists of encoded image bytes)."""

    kind: str
    params: dict[str, Any]
    images: dict[str, list[bytes]] = field(default_factory=dict)

    def to_fields(self) -> dict[bytes, bytes]:
        """Redis hash fields: the JSON part under ``spec``, each image under ``img:<name>:<index>``."""
        try:
            meta = json.dumps({"kind": self.kind, "params": self.params}, allow_nan=False)
        except (TypeError, ValueError) as exc:  # the parser refuses NaN; anything else is a bug upstream
            raise InvalidArgument(f"The job's options cannot be stored as JSON ({exc}).") from None
        out = {SPEC_FIELD: meta.encode()}
        for name, blobs in self.images.items():
            for i, blob in enumerate(blobs):
                out[f"img:{name}:{i}".encode()] = bytes(blob)
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> JobSpec:
        meta = json.loads(fields[SPEC_FIELD])
        found: dict[str, dict[int, bytes]] = {}
        for key, value in fields.items():
            if key.startswith(b"img:"):
                _, name, index = key.decode().split(":")
                found.setdefault(name, {})[int(index)] = value
        images = {name: [parts[i] for i in sorted(parts)] for name, parts in found.items()}
        return cls(str(meta["kind"]), dict(meta["params"]), images)

    def image(self, name: str) -> bytes | None:
        blobs = self.images.get(name) or []
        return blobs[0] if blobs else None


@dataclass(frozen=True)
class JobWork:
    """One validated job: the spec (for the shared queue) and the closure built from it (in-process)."""

    spec: JobSpec
    fn: JobFunction


class JobQueue(Protocol):
    """What ``plane.jobs`` offers, in-process (``JobManager``) or on Redis (``RedisJobs``).

    ``submit`` takes a bare closure and always runs it in this process; ``submit_work`` takes a
    ``JobWork`` (every slow job: Gatys, DeepDream, attacks) and runs wherever the manager runs its jobs. ``get``/``cancel`` find only ``owner``'s
    jobs when an owner is given (another key's id reads as unknown). ``executor``: where the calls run
    when called from the event loop (``queue_call``); None when they never wait on I/O.
    """

    @property
    def executor(self) -> Executor | None: ...

    def submit(
        self, kind: str, fn: JobFunction, deadline: float | None = None, owner: str | None = None
    ) -> Job: ...

    def submit_work(self, work: JobWork, deadline: float | None = None, owner: str | None = None) -> Job: ...

    def get(self, job_id: str, owner: str | None = None) -> Job: ...

    def cancel(self, job_id: str, reason: str = ..., owner: str | None = None) -> Job: ...

    def result(self, job_id: str, owner: str | None = None) -> JobOutput: ...

    def subscribe(self, job_id: str, owner: str | None = None) -> AsyncIterator[JobEvent]: ...


async def queue_call(queue: JobQueue, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args)``, a method of ``queue``, from the event loop: in the queue's executor when it has one
    (the shared queue), else at once (the in-process manager: memory under a lock, never blocking)."""
    if queue.executor is None:
        return fn(*args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(
        queue.executor, functools.partial(fn, *args, **kwargs)
    )


def queue_call_soon(queue: JobQueue, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
    """``queue_call`` without waiting for the answer (a cancel from a ``finally`` of a stream that is
    being torn down, where awaiting is unsafe); a failure is logged."""
    if queue.executor is None:
        fn(*args, **kwargs)
        return

    def done(future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("%s failed in the background: %s", getattr(fn, "__name__", fn), future.exception())

    try:
        queue.executor.submit(fn, *args, **kwargs).add_done_callback(done)
    except RuntimeError:  # the executor has shut down: the replica is closing
        log.warning("%s skipped: the job queue is closed", getattr(fn, "__name__", fn))
