"""The shared queue, worker side: ``atelier worker`` runs the Gatys, DeepDream and attack jobs
taken from Redis.

Dramatiq (its Redis broker) delivers "run job <id>" messages at least once: a message stays in the
worker's un-acked set until the job's run returns, and when a worker stops heart-beating for
``heartbeat_s`` (SIGKILL, a lost machine) any other worker's broker moves its un-acked messages back to
the queue. ``MAINTENANCE_CHANCE`` makes every broker command look for dead workers (Dramatiq's default
looks on one in a thousand, minutes on an idle queue). Each message is claimed through the ``claim``
script (``redis_store.py``): a re-delivered job counts its next attempt, a job another live worker runs
is left to it (the message is put back, delayed, so it outlives that worker), a job that ended is
dropped. Dramatiq's own retries, time limits and age limits are off (no middleware): the job's
``CancelToken`` carries the run-time cap and the deadline, and failures are the job's result, not a
reason to re-run it.

Per job: inputs are read from Redis and rebuilt into the job function by ``work_from_spec`` (the same
checks as the replica that accepted it); each progress report is one script call that appends the event,
stores the preview apart and answers whether a cancel is pending, so a cancel sent to any replica stops
the job within one iteration (the heartbeat tick also looks, for stretches without reports). The result
is stored once by the ``finish`` script. A Redis outage does not stop a running job: reports are
dropped while Redis is away, and the final write is retried for ``FINISH_RETRY_S``.

Drain (SIGTERM): messages that arrive go back to the queue; running jobs get ``job_grace_s`` to finish,
then are handed back (``requeue``: state ``queued`` again, a new message) for another worker; exit 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import replace

import redis

from service.core.errors import AtelierError, Cancelled, DeadlineExceeded
from service.core.imageio import encode_image
from service.core.progress import CancelToken, Progress
from service.server.jobs.job import JobOutput, JobState
from service.server.jobs.redis_codec import (
    encode_error,
    encode_progress,
    encode_result,
    lost_error,
    monotonic_of,
    progress_body,
)
from service.server.jobs.redis_jobs import SHARED_KINDS, connect
from service.server.jobs.redis_monitor import QueueMonitor
from service.server.jobs.redis_store import SCRIPTS, QueueConfig
from service.server.jobs.work import JobSpec
from service.server.metrics import Metrics
from service.server.plane.slow_jobs import SlowConfig, work_from_spec

log = logging.getLogger(__name__)

MAINTENANCE_CHANCE = 1_000_000  # of Dramatiq's MAINTENANCE_SCALE (a million): every command
# An idle Dramatiq consumer polls Redis at most this far apart (its fetch does not block), so a job
# waits about half of it for an idle worker: scripts/bench_scale.py measures the start overhead.
POLL_MS = 30
FINISH_RETRY_S = 30.0
DRAIN_REASON = "worker shutting down; re-queued for another worker"
ACTOR = "atelier_job"


class QueueWorker:
    """One worker process: ``concurrency`` Dramatiq worker threads, a heartbeat and a monitor."""

    def __init__(
        self,
        cfg: QueueConfig,
        slow: SlowConfig,
        metrics: Metrics,
        concurrency: int = 1,
        job_grace_s: float = 5.0,
    ) -> None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        self.cfg, self.slow, self.metrics = cfg, slow, metrics
        self.job_grace_s = job_grace_s
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.client = connect(cfg)
        self.scripts = {name: self.client.register_script(body) for name, body in SCRIPTS.items()}
        self.broker = RedisBroker(
            client=connect(cfg), namespace=cfg.namespace, middleware=[],
            heartbeat_timeout=int(cfg.heartbeat_s * 1000), maintenance_chance=MAINTENANCE_CHANCE,
        )  # fmt: skip
        dramatiq.Actor(
            self.run_job, broker=self.broker, actor_name=ACTOR, queue_name=cfg.queue_name, priority=0,
            options={},
        )  # fmt: skip
        self.worker = dramatiq.Worker(self.broker, worker_threads=concurrency, worker_timeout=POLL_MS)
        self.worker.queue_prefetch = concurrency  # one message per thread: none held back from others
        self._lock = threading.Lock()
        self._running: dict[str, tuple[CancelToken, int]] = {}  # job id -> (token, attempt)
        self._draining = threading.Event()
        self._report_failing = False
        self.monitor = QueueMonitor(cfg, metrics, on_tick=self._heartbeat)
        for kind in SHARED_KINDS:
            metrics.prime_job_kind(kind)
            metrics.job_attempts.labels(kind=kind)

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._heartbeat()  # counted as a live worker before its first message
        self.monitor.start()
        self.worker.start()

    def drain(self, grace_s: float | None = None) -> None:
        """Stop taking jobs; give running ones ``grace_s`` (default ``job_grace_s``), then re-queue them."""
        self._draining.set()
        end = time.monotonic() + (self.job_grace_s if grace_s is None else grace_s)
        while self._active() and time.monotonic() < end:
            time.sleep(0.05)
        with self._lock:
            tokens = [token for token, _ in self._running.values()]
        for token in tokens:
            token.cancel(DRAIN_REASON)
        self.worker.stop(timeout=int(FINISH_RETRY_S * 1000))  # joins the threads, re-queues prefetched
        self.monitor.close()
        with contextlib.suppress(redis.RedisError):
            self.client.zrem(self.cfg.key("workers"), self.id)  # gone now, not in heartbeat_s

    def _active(self) -> bool:
        with self._lock:
            return bool(self._running)

    def _heartbeat(self) -> None:
        cfg = self.cfg
        with self._lock:
            running = dict(self._running)
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(cfg.key("workers"), {self.id: time.time() + cfg.heartbeat_s})  # renew the lease
        for job_id in running:
            pipe.hget(cfg.job_key(job_id), "cancel")
        flags = pipe.execute()[1:]
        for (token, _), flag in zip(running.values(), flags, strict=True):
            if flag:
                token.cancel(flag.decode())

    def _send(self, job_id: str, delay_ms: int | None = None) -> None:
        from dramatiq import Message

        self.broker.enqueue(Message(self.cfg.queue_name, ACTOR, (job_id,), {}, {}), delay=delay_ms)

    # --- one message ------------------------------------------------------------------------------------
    def run_job(self, job_id: str) -> None:
        """The actor: claim the job, run it, store how it ended. Never raises for the job's own failure."""
        cfg = self.cfg
        if self._draining.is_set():
            self._send(job_id)  # not ours to start: back in the queue for another worker
            return
        verdict = self.scripts["claim"](
            args=[cfg.prefix, job_id, self.id, time.time(), cfg.heartbeat_s, cfg.max_attempts,
                  cfg.active_ttl_s, lost_error(cfg.max_attempts)]
        )  # fmt: skip
        what = verdict[0].decode()
        if what == "busy":  # a live worker runs it: keep a message alive in case that worker dies
            self._send(job_id, delay_ms=int(cfg.heartbeat_s * 1000))
            return
        if what != "run":
            log.info("job %s: not run (%s)", job_id, what)
            return
        attempt = int(verdict[1])
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(cfg.job_key(job_id))
        pipe.hgetall(cfg.job_key(job_id, ":in"))
        fields, inputs = pipe.execute()
        kind = fields.get(b"kind", b"").decode()
        self.metrics.job_attempts.labels(kind=kind).inc()
        log.info("job %s (%s): attempt %d on worker %s", job_id, kind, attempt, self.id)
        token = CancelToken(deadline=monotonic_of(fields.get(b"deadline", b"").decode()))
        cap = time.monotonic() + cfg.max_runtime_s
        token.deadline = cap if token.deadline is None else min(token.deadline, cap)
        reason = fields.get(b"cancel", b"").decode()
        if reason:
            token.cancel(reason)
        with self._lock:
            self._running[job_id] = (token, attempt)
        try:
            self._run(job_id, kind, attempt, token, inputs, fields)
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    def _run(
        self, job_id: str, kind: str, attempt: int, token: CancelToken, inputs: dict, fields: dict
    ) -> None:
        m = self.metrics
        created = monotonic_of(fields.get(b"created", b"").decode()) or time.monotonic()
        m.queue_wait.labels(queue="jobs").observe(max(0.0, time.monotonic() - created))
        m.jobs.labels(kind=kind, state=JobState.RUNNING).inc()
        start = time.monotonic()
        output: JobOutput | None = None
        error: BaseException | None = None
        try:
            token.check()  # a job cancelled or past its deadline while queued never starts
            fn = work_from_spec(self.slow, JobSpec.from_fields(inputs))
            output = fn(token, lambda p: self._report(job_id, attempt, token, p))
            state = JobState.SUCCEEDED
        except Cancelled as exc:
            state, error = JobState.CANCELLED, exc
        except DeadlineExceeded as exc:
            state, error = JobState.DEADLINE_EXCEEDED, exc
        except AtelierError as exc:
            state, error = JobState.FAILED, exc
        except Exception as exc:
            log.error("job %s (%s) failed with an unexpected error", job_id, kind, exc_info=exc)
            state, error = JobState.FAILED, exc
        finally:
            m.jobs.labels(kind=kind, state=JobState.RUNNING).dec()
        if state is JobState.CANCELLED and self._draining.is_set() and DRAIN_REASON in str(error):
            self._requeue(job_id)
            return
        m.jobs_finished.labels(kind=kind, state=state).inc()
        m.job_duration.labels(kind=kind).observe(time.monotonic() - start)
        self._finish(job_id, state, error, output)

    def _report(self, job_id: str, attempt: int, token: CancelToken, p: Progress) -> None:
        cfg = self.cfg
        body = {"state": "running", **progress_body(p)}
        try:
            if p.preview is not None:
                jpeg = encode_image(p.preview, "jpeg", 85)
                self.client.set(cfg.job_key(job_id, ":pv"), jpeg, ex=cfg.active_ttl_s)
                body["preview"] = True
                p = replace(p, preview=None)
            verdict = self.scripts["progress"](
                args=[cfg.prefix, job_id, self.id, attempt, json.dumps(body), encode_progress(p)]
            ).decode()
        except redis.RedisError as exc:  # the job goes on; its watchers miss this step
            if not self._report_failing:
                log.warning("job %s: progress not stored (%s); the job goes on", job_id, exc)
            self._report_failing = True
            return
        self._report_failing = False
        if verdict.startswith("cancel:"):
            token.cancel(verdict.removeprefix("cancel:"))
        elif verdict != "ok":  # ended elsewhere, or its state is gone: stop spending the CPU on it
            token.cancel(f"the job is no longer this worker's ({verdict})")

    def _finish(
        self, job_id: str, state: JobState, error: BaseException | None, output: JobOutput | None
    ) -> None:
        cfg = self.cfg
        meta, data = encode_result(output) if output is not None else ("", b"")
        end = time.monotonic() + FINISH_RETRY_S
        while True:
            try:
                verdict = self.scripts["finish"](
                    args=[cfg.prefix, job_id, str(state), encode_error(error), time.time(), cfg.ttl_s, meta,
                          data]
                ).decode()  # fmt: skip
                log.info("job %s: %s (%s)", job_id, state, verdict)
                return
            except redis.RedisError as exc:
                if time.monotonic() >= end:
                    log.error("job %s: its end (%s) could not be stored: %s", job_id, state, exc)
                    return
                time.sleep(0.5)

    def _requeue(self, job_id: str) -> None:
        try:
            if self.scripts["requeue"](args=[self.cfg.prefix, job_id, self.id, time.time(), DRAIN_REASON]):
                self._send(job_id)
                log.info("job %s: handed back to the queue (worker draining)", job_id)
        except redis.RedisError as exc:  # Dramatiq re-delivers it once this worker's heartbeat stops
            log.warning("job %s: could not be re-queued (%s); it is re-run once this worker is gone", job_id,
                        exc)  # fmt: skip
