"""What every process on the shared queue does once a second: the queue gauges and the lost-job sweep.

Each API replica and each worker runs a ``QueueMonitor`` thread. A tick sets
``atelier_redis_queue_depth`` (jobs waiting), ``atelier_redis_queue_oldest_age_seconds`` and
``atelier_redis_workers`` (workers whose lease is current), and runs the ``reap`` script: a running job
whose worker's lease ran out (silent for its ``heartbeat_s``) is put back in the queue at once (its watchers see
``queued`` again, so a job is never left showing ``running``), or fails once it has lost
``max_attempts`` workers. Dramatiq itself re-delivers the dead worker's message; the claim script makes
the re-run count as the next attempt. Any process may sweep: the script is atomic, so two sweeping at
once change a job once. A worker's tick also writes its own heartbeat (``on_tick``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from service.server.jobs.manager import JobManager
from service.server.jobs.redis_codec import lost_error
from service.server.jobs.redis_jobs import SHARED_KINDS, RedisJobs, connect
from service.server.jobs.redis_store import SCRIPTS, QueueConfig
from service.server.metrics import Metrics

log = logging.getLogger(__name__)

TICK_S = 1.0
LOST_NOTE = "its worker was lost; it waits for another worker"


class QueueMonitor:
    """The once-a-second tick (gauges, sweep, ``on_tick``) on its own daemon thread."""

    def __init__(
        self, cfg: QueueConfig, metrics: Metrics, on_tick: Callable[[], None] | None = None, tick_s: float = 0
    ) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.on_tick = on_tick
        self.tick_s = tick_s or min(TICK_S, cfg.heartbeat_s / 4)
        self.client = connect(cfg)
        self.reap = self.client.register_script(SCRIPTS["reap"])
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._loop, name="atelier-queue-monitor", daemon=True)
        metrics.enable_shared_queue()

    def start(self) -> QueueMonitor:
        self._thread.start()
        return self

    def tick(self) -> list[str]:
        """One round (raises ``redis.RedisError`` when Redis cannot be reached); the ids it re-queued or
        failed."""
        if self.on_tick is not None:
            self.on_tick()
        cfg, now = self.cfg, time.time()
        changed = self.reap(
            args=[cfg.prefix, now, cfg.heartbeat_s, cfg.max_attempts, cfg.ttl_s,
                  lost_error(cfg.max_attempts), LOST_NOTE]
        )  # fmt: skip
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(cfg.key("queued"))
        pipe.zrange(cfg.key("queued"), 0, 0, withscores=True)
        pipe.zcount(cfg.key("workers"), now, "+inf")  # leases not yet run out
        depth, oldest, workers = pipe.execute()
        m = self.metrics
        m.redis_queue_depth.set(depth)
        m.redis_queue_oldest_age.set(max(0.0, now - oldest[0][1]) if oldest else 0.0)
        m.redis_workers.set(workers)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in changed]
        for job_id in ids:
            log.warning("job %s: its worker was lost; re-queued (or failed after %d attempts)", job_id,
                        cfg.max_attempts)  # fmt: skip
        return ids

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except redis.RedisError as exc:
                if not self._failing:  # once per outage, not once a second
                    log.warning("the job queue (Redis at %s) cannot be reached: %s", self.cfg.where(), exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("the job queue (Redis at %s) answers again", self.cfg.where())
                self._failing = False

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.client.close()


class SharedQueue:
    """An API replica's part of the shared queue: ``jobs`` (``RedisJobs``) and its monitor thread."""

    def __init__(self, cfg: QueueConfig, local: JobManager, metrics: Metrics) -> None:
        self.jobs = RedisJobs(cfg, local)
        self.monitor = QueueMonitor(cfg, metrics).start()
        for kind in SHARED_KINDS:
            metrics.job_attempts.labels(kind=kind)

    def close(self) -> None:
        self.monitor.close()
        self.jobs.close()
