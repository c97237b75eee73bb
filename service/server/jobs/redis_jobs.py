"""The shared job queue, API side: ``ATELIER_QUEUE_URL=redis://...`` makes ``plane.jobs`` a ``RedisJobs``.

Gatys, DeepDream and attack jobs go to Redis as ``JobSpec`` data (``work.py``, keys and scripts in
``redis_store.py``) and a Dramatiq message names them; any number of ``atelier worker`` processes run
them (``redis_worker.py``). Any replica's ``get`` / ``cancel`` / ``subscribe`` reads the same job: its
state and events live in Redis, so the job's JSON, the SSE stream and the gRPC stream look as they do
in-process, plus ``attempts``. A job given as a bare closure (``submit``, without a spec; no route
sends one now) runs in this replica's own ``JobManager`` and is seen through it only.

Calls are short Redis round trips (the manager's interface is synchronous, as the in-process one is);
the client's timeouts bound them, and code on the event loop makes them in ``executor`` (``queue_call``
of ``work.py``), so a stalled Redis holds up the calls that need it, not the replica's other requests.
An unreachable Redis is ``NotReady`` (UNAVAILABLE / 503, "retry"): never a hang, never a 500. A stream
that loses Redis retries for ``RECONNECT_S``, then ends with a failed event saying so; one whose job
vanished (Redis restarted without its data) ends the same way at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from service.core.errors import NotReady, ResourceExhausted, UnknownJob, quoted
from service.server.jobs.job import TERMINAL_STATES, Job, JobEvent, JobFunction, JobOutput, JobState
from service.server.jobs.manager import JobManager
from service.server.jobs.redis_codec import (
    decode_error,
    decode_progress,
    decode_result,
    encode_error,
    epoch_of,
    event_of,
    monotonic_of,
)
from service.server.jobs.redis_store import SCRIPTS, QueueConfig
from service.server.jobs.work import JobWork

log = logging.getLogger(__name__)

SHARED_KINDS = ("gatys", "deepdream", "attack")  # every JobSpec kind a worker runs (work_from_spec)
RECONNECT_S = 5.0  # how long a stream keeps retrying a lost Redis before it ends with an error
BLOCK_MS = 1000  # one XREAD wait; between waits a stream checks that its job still exists
SOCKET_TIMEOUT_S = 5.0  # above BLOCK_MS, so a blocking read is never cut by the client's own timeout
CALL_THREADS = 16  # Redis calls of the event loop at once (beyond that they wait; the loop never does)


def connect(cfg: QueueConfig) -> redis.Redis:
    """A client whose every call ends within seconds, Redis up or down (two quick retries, no more)."""
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        cfg.url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=2.0,
        health_check_interval=10,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.01), 2),
    )


def unreachable(cfg: QueueConfig, exc: BaseException) -> NotReady:
    return NotReady(
        f"The job queue (Redis at {cfg.where()}) cannot be reached ({type(exc).__name__}); retry shortly."
    )


@contextlib.contextmanager
def reaching(cfg: QueueConfig) -> Iterator[None]:
    """Turn a Redis failure into ``NotReady`` (UNAVAILABLE / 503) for the caller."""
    try:
        yield
    except redis.RedisError as exc:
        raise unreachable(cfg, exc) from None


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class RemoteJob(Job):
    """A job of the shared queue as one replica sees it: a snapshot of its hash, kept current by
    ``events()`` as they arrive. Result bytes are fetched only for a job that succeeded."""

    shared = True

    def __init__(self, jobs: RedisJobs, job_id: str, fields: dict[bytes, bytes], data: bytes | None) -> None:
        self._jobs = jobs
        self.id = job_id
        self.kind = _text(fields.get(b"kind"))
        self.owner = _text(fields.get(b"owner")) or None
        self.created = monotonic_of(_text(fields.get(b"created"))) or time.monotonic()
        self.started = monotonic_of(_text(fields.get(b"started")))
        self.finished = monotonic_of(_text(fields.get(b"finished")))
        self.attempts = int(_text(fields.get(b"attempts")) or 0)
        state = JobState(_text(fields.get(b"state")) or "queued")
        output = decode_result(fields.get(b"result"), data) if state is JobState.SUCCEEDED else None
        duration = _text(fields.get(b"duration"))
        self._latest = JobEvent(
            job_id,
            self.kind,
            state,
            progress=decode_progress(_text(fields.get(b"progress"))),
            output=output,
            error=decode_error(_text(fields.get(b"error"))),
            duration_s=float(duration) if duration else None,
        )

    @property
    def latest(self) -> JobEvent:
        return self._latest

    def output(self) -> JobOutput:
        event = self._latest
        if event.state is JobState.SUCCEEDED and event.output is not None:
            return event.output
        if event.error is not None:
            raise event.error
        raise NotReady(f"Job {self.id} is {event.state}; its result is not ready yet.")

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self._latest.terminal:
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.05)  # for tests and scripts (a thread); streams use events()
            with contextlib.suppress(UnknownJob):
                fresh = self._jobs.get(self.id)
                self._latest, self.started, self.finished = fresh.latest, fresh.started, fresh.finished
                self.attempts = fresh.attempts
        return True

    async def events(self, from_start: bool = True) -> AsyncIterator[JobEvent]:
        cfg = self._jobs.cfg
        stream = cfg.job_key(self.id, ":ev")
        after = "0-0" if from_start else "$"
        progress = self._latest.progress
        lost_since: float | None = None
        client = self._jobs.aio()
        while True:
            try:
                got: Any = await client.xread({stream: after}, count=64, block=BLOCK_MS)
                if not got and not await client.exists(cfg.job_key(self.id)):
                    yield self._gone(
                        "its state is no longer in Redis (expired, or Redis restarted without it)"
                    )
                    return
                lost_since = None
            except redis.RedisError as exc:
                now = time.monotonic()
                lost_since = lost_since or now
                if now - lost_since >= RECONNECT_S:
                    yield self._gone(str(unreachable(cfg, exc)))
                    return
                await asyncio.sleep(0.2)
                continue
            for _, entries in got or []:
                for entry_id, fields in entries:
                    after = _text(entry_id)
                    event = await self._event(json.loads(fields[b"e"]), progress)
                    progress = event.progress
                    self._latest = event
                    yield event
                    if event.terminal:
                        return

    async def _event(self, body: dict[str, Any], progress: Any) -> JobEvent:
        if "step" in body:  # a progress report
            progress = decode_progress(json.dumps(body))
        event = event_of(self.id, self.kind, body, progress)
        if "attempt" in body:
            self.attempts = int(body["attempt"])
        if "started" in body:
            self.started = monotonic_of(body["started"])
        if "finished" in body:
            self.finished = monotonic_of(body["finished"])
        client = self._jobs.aio()
        cfg = self._jobs.cfg
        if body.get("preview"):
            jpeg: bytes | None = cast(Any, await client.get(cfg.job_key(self.id, ":pv")))
            event = JobEvent(event.job_id, event.kind, event.state, progress, preview_jpeg=jpeg)
        if event.state is JobState.SUCCEEDED:
            data: bytes | None = cast(Any, await client.get(cfg.job_key(self.id, ":out")))
            output = decode_result(body.get("result"), data)
            if output is None:
                return self._gone("its result is no longer in Redis")
            event = JobEvent(event.job_id, event.kind, event.state, progress, output=output,
                             duration_s=event.duration_s)  # fmt: skip
        return event

    def _gone(self, why: str) -> JobEvent:
        error = NotReady(
            f"Lost track of job {self.id}: {why}. Ask GET /v1/jobs/{self.id} again, or resubmit."
        )
        self._latest = JobEvent(self.id, self.kind, JobState.FAILED, self._latest.progress, error=error)
        return self._latest


class RedisJobs:
    """``plane.jobs`` with the shared queue on (``JobQueue``). ``local`` runs bare closures (``submit``)."""

    def __init__(self, cfg: QueueConfig, local: JobManager) -> None:
        from dramatiq.brokers.redis import RedisBroker

        self.cfg = cfg
        self.local = local
        self.client = connect(cfg)
        self.scripts = {name: self.client.register_script(body) for name, body in SCRIPTS.items()}
        self.broker = RedisBroker(
            client=connect(cfg), namespace=cfg.namespace, middleware=[],
            heartbeat_timeout=int(cfg.heartbeat_s * 1000),
        )  # fmt: skip
        self._aio: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None
        # Its own threads, not the loop's default executor: a stalled Redis must not starve the other
        # users of that one (the drain, model reloads, v2 body parsing).
        self.executor = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="atelier-redis")

    def aio(self) -> aioredis.Redis:
        """The asyncio client of the running loop (made on first use; one loop serves a replica)."""
        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio[0] is not loop:
            client = aioredis.Redis.from_url(
                self.cfg.url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=2.0
            )
            self._aio = (loop, client)
        return self._aio[1]

    # --- JobQueue ---------------------------------------------------------------------------------------
    def submit(
        self, kind: str, fn: JobFunction, deadline: float | None = None, owner: str | None = None
    ) -> Job:
        return self.local.submit(kind, fn, deadline, owner)

    def submit_work(self, work: JobWork, deadline: float | None = None, owner: str | None = None) -> Job:
        if work.spec.kind not in SHARED_KINDS:
            return self.local.submit_work(work, deadline, owner)
        from dramatiq import Message

        cfg = self.cfg
        job_id = uuid.uuid4().hex
        fields = [x for pair in work.spec.to_fields().items() for x in pair]
        dl = epoch_of(deadline)
        with reaching(cfg):
            verdict = self.scripts["submit"](
                args=[cfg.prefix, job_id, work.spec.kind, owner or "", time.time(),
                      "" if dl is None else dl, cfg.active_ttl_s, cfg.queue_limit, cfg.jobs_per_key, *fields]
            )  # fmt: skip
            what, count = _text(verdict[0]), int(verdict[1]) if len(verdict) > 1 else 0
            if what == "full":
                raise ResourceExhausted(
                    f"The shared job queue is full ({count} jobs waiting for a worker).",
                    retry_after_s=10.0,
                )
            if what == "owner":
                raise ResourceExhausted(
                    f"API key {owner!r} already has {count} jobs queued or running (the limit per key); "
                    "wait for one to finish or cancel one.",
                    retry_after_s=10.0,
                )
            self.broker.enqueue(Message(cfg.queue_name, "atelier_job", (job_id,), {}, {}))
        return self.get(job_id, owner)

    def get(self, job_id: str, owner: str | None = None) -> Job:
        with contextlib.suppress(UnknownJob):
            return self.local.get(job_id, owner)
        cfg = self.cfg
        with reaching(cfg):
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(cfg.job_key(job_id))
            pipe.get(cfg.job_key(job_id, ":out"))
            pipe.get(cfg.key("tomb", job_id))
            fields, data, tomb = pipe.execute()
        if fields and (owner is None or _text(fields.get(b"owner")) == owner):
            return RemoteJob(self, job_id, fields, data)
        if not fields and tomb is not None and owner in (None, _text(tomb)):
            raise UnknownJob(f"Job {job_id} has finished and its result has expired.")
        raise UnknownJob(f"No job with id {quoted(job_id)} exists.")

    def cancel(self, job_id: str, reason: str = "cancelled by the client", owner: str | None = None) -> Job:
        job = self.get(job_id, owner)
        if not isinstance(job, RemoteJob):
            return self.local.cancel(job_id, reason, owner)
        from service.core.errors import Cancelled

        with reaching(self.cfg):
            self.scripts["cancel"](
                args=[self.cfg.prefix, job_id, reason, encode_error(Cancelled(f"Job was cancelled ({reason}).")),
                      time.time(), self.cfg.ttl_s]
            )  # fmt: skip
        return self.get(job_id, owner)

    def result(self, job_id: str, owner: str | None = None) -> JobOutput:
        return self.get(job_id, owner).output()

    def subscribe(self, job_id: str, owner: str | None = None) -> AsyncIterator[JobEvent]:
        return self.get(job_id, owner).events()

    # --- the rest of the manager's surface --------------------------------------------------------------
    @property
    def queued(self) -> int:
        with reaching(self.cfg):
            return int(self.client.zcard(self.cfg.key("queued")))

    @property
    def running(self) -> int:
        with reaching(self.cfg):
            return int(self.client.hlen(self.cfg.key("running")))

    def close(self) -> None:
        """Queued and running shared jobs stay in Redis for the workers: a replica going away loses none."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()
        self.broker.client.close()


__all__ = ["SHARED_KINDS", "TERMINAL_STATES", "RedisJobs", "RemoteJob", "connect", "reaching"]
