"""Real servers for the tests, on 127.0.0.1 with ephemeral ports (never mocks of gRPC or HTTP).

``LiveServer`` is the whole server (``service.server.app.Server``: gRPC and REST over one data plane) on
its own event loop thread, for blocking test clients; ``ServerProcess`` is the same server as the
``python -m service serve`` process, for what only a process shows (signals, exit codes, logs). Both are
configured by ``Settings`` values and answer the same questions (``grpc_target``, ``url``, ``http``), and
``tests/conftest.py`` hands them out: the shared ``live`` server and the ``start_server`` factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import grpc
import httpx
import uvicorn

from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.server.app import Server, ServerOptions, _Uvicorn
from service.server.auth.authenticator import Authenticator
from service.server.plane.config import PlaneConfig
from service.server.plane.dataplane import DataPlane
from service.settings import Settings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024

# The style models every server test sees: starry_night (the README's examples use it) and two more,
# plus a corrupt one that the server must skip (serving the others) and count.
STYLES = ("starry_night", "tiny_a", "tiny_b")
BROKEN = "broken"
StartServer = Callable[..., Any]  # the conftest factory: start_server(**settings) -> LiveServer

# What every test server has unless a test says otherwise: loopback, any free ports, CPU only, one
# thread each, small limits so the limit tests stay cheap.
TEST_SETTINGS: dict[str, Any] = dict(
    host="127.0.0.1",
    grpc_port=0,
    http_port=0,
    grace_period_s=1.0,
    device="cpu",
    ort_providers=["CPUExecutionProvider"],
    ort_intra_threads=1,
    max_message_bytes=4 * MiB,
    max_image_bytes=1 * MiB,
    max_image_pixels=4_000_000,
    max_side_slow=256,
    batch_max_delay_ms=100.0,  # generous, so concurrent test calls reliably share a batch
    job_workers=1,
    job_queue_limit=1,
)


def server_settings(models_dir: Path, **overrides: Any) -> Settings:
    """``Settings`` for a test server (no ``.env``): ``TEST_SETTINGS`` with ``overrides`` on top."""
    return Settings(_env_file=None, **{**TEST_SETTINGS, "models_dir": models_dir, **overrides})


@contextlib.contextmanager
def serving(models_dir: Path, **overrides: Any) -> Iterator[LiveServer]:
    """A started ``LiveServer`` of its own on ``models_dir`` (``server_settings`` with ``overrides``; no
    warm-up runs), closed on exit: the body of a module's server fixture."""
    live = LiveServer(server_settings(models_dir, **overrides), warmup=False)
    try:
        yield live.start()
    finally:
        live.close()


class LiveServer:
    """``Server`` on its own event loop thread; ``start()`` binds the ports (and loads the models)."""

    def __init__(self, settings: Settings, warmup: bool = True) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.thread.start()
        self.plane = DataPlane(PlaneConfig.from_settings(settings, warmup=warmup))
        self.server = Server(
            self.plane,
            ServerOptions.from_settings(settings),
            auth=Authenticator.from_settings(settings),  # open unless the settings name a keys file
            cors_origins=settings.cors_origins,
        )
        self.url = self.grpc_target = ""
        self.http = httpx.Client(timeout=60)
        self._channel: grpc.Channel | None = None

    def start(self, load_models: bool = True) -> LiveServer:
        self.run(self.server.start(load_models=load_models))
        self.url = f"http://127.0.0.1:{self.server.http_port}"
        self.grpc_target = f"127.0.0.1:{self.server.grpc_port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run a coroutine on the server's loop (``live.run(live.plane.start())``) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def stub(self) -> pb_grpc.AtelierStub:
        """A raw stub on one channel kept for the server's life (for status codes and metadata)."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc_target)
        return pb_grpc.AtelierStub(self._channel)

    def close(self) -> None:
        self.http.close()
        if self._channel is not None:
            self._channel.close()
        try:
            self.run(self.server.stop(0.5))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class LogReader:
    """Drains a process's stderr in a thread (so the pipe never fills) and waits for a line pattern."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append("<eof>")
            self.cond.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def match() -> bool:
            found[:] = [m for line in self.lines if (m := pattern.search(line))]
            return bool(found) or "<eof>" in self.lines

        with self.cond:
            self.cond.wait_for(match, timeout)
        assert found, "server never logged the line; its log:\n" + "".join(self.lines)
        return found[0]

    @property
    def text(self) -> str:
        with self.cond:
            return "".join(self.lines)


LISTENING = re.compile(r"listening: gRPC on [\d.]+:(\d+), HTTP on [\d.]+:(\d+)")


class ServerProcess:
    """``python -m service serve`` configured through ``ATELIER_*`` variables, the way it is deployed."""

    def __init__(self, settings: Settings) -> None:
        env = {**os.environ, "ATELIER_LOG_LEVEL": "INFO", "ATELIER_TORCH_THREADS": "1"}
        for name, value in settings.model_dump(mode="json", exclude_defaults=True).items():
            env[f"ATELIER_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stderr is not None
        self.log = LogReader(self.proc.stderr)
        self.url = self.grpc_target = ""
        self.http = httpx.Client(timeout=60)

    def start(self, load_models: bool = True) -> ServerProcess:
        """Wait until both ports are bound (the models may still be loading)."""
        grpc_port, http_port = self.log.wait_for(LISTENING, timeout=120).groups()
        self.url = f"http://127.0.0.1:{http_port}"
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        return self

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (port 0) in a thread; yields its base URL."""
    server = _Uvicorn(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, name="test-asgi", daemon=True)
    thread.start()
    try:
        while not server.started:  # uvicorn offers no event to wait on
            assert thread.is_alive(), "uvicorn failed to start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
