"""Real parts for the shared-queue tests: Debian's ``redis-server`` on a free loopback port and
``atelier worker`` processes, beside the API processes of ``tests/liveserver.py``.

``RedisServer`` runs without persistence (``--save '' --appendonly no``), so a restart loses everything,
the harshest case for the replicas and workers; ``kill()`` and ``start()`` again keep the port.
``WorkerProcess`` is ``python -m service worker`` configured by ``ATELIER_*`` variables, as it is deployed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from typing import Any

import httpx
import redis

from tests.liveserver import ROOT, LogReader

# A worker silent this long is lost: short, so a SIGKILLed worker's job moves on within seconds, yet long
# enough that a worker starved of CPU by a running Gatys job (GIL, a loaded 2-core CI machine) keeps its
# lease: at 1.5 s, and again at 3 s with the test suite beside a scoring run, a live worker was declared
# lost mid-job and its job superseded.
HEARTBEAT_S = 6.0
READY = re.compile(r"worker (\S+) ready: .* metrics on [\d.]+:(\d+)")
REDIS_READY = re.compile(r"Ready to accept connections")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """``redis-server`` on 127.0.0.1; ``url`` for ``ATELIER_QUEUE_URL``."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server; .ci/run does)"
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        # redis-server logs this line once it accepts connections: wait on it, not on a polling loop.
        LogReader(self.proc.stdout).wait_for(REDIS_READY, timeout)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def worker_env(redis_url: str, **settings: Any) -> dict[str, str]:
    env = {
        **os.environ,
        "ATELIER_QUEUE_URL": redis_url,
        "ATELIER_DEVICE": "cpu",
        "ATELIER_TORCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "ATELIER_MAX_SIDE_SLOW": "256",
        "ATELIER_JOB_GRACE_S": "0.5",
        "ATELIER_LOG_LEVEL": "INFO",
    }
    env.update({f"ATELIER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class WorkerProcess:
    """``python -m service worker`` on the given Redis; ``start()`` waits for its ready line."""

    def __init__(self, redis_url: str, concurrency: int = 1, **settings: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "worker", "--concurrency", str(concurrency),
             "--metrics-port", "0", "--host", "127.0.0.1", "--heartbeat-s", str(HEARTBEAT_S)],
            cwd=ROOT,
            env=worker_env(redis_url, **settings),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        self.log = LogReader(self.proc.stderr)
        self.id = ""
        self.metrics_url = ""

    def start(self, timeout: float = 120) -> WorkerProcess:
        match = self.log.wait_for(READY, timeout)
        self.id = match.group(1)
        self.metrics_url = f"http://127.0.0.1:{match.group(2)}/metrics"
        return self

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of the worker's /metrics (None when the series is missing)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.metrics_url, timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None

    def sigkill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
