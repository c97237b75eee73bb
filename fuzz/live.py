"""A real server (gRPC and REST over one data plane) on 127.0.0.1 with free ports, for the fuzzers.

Built only from ``Settings`` (``PlaneConfig.from_settings``, ``ServerOptions.from_settings``), the way
``atelier serve`` builds it, so new settings reach it with their defaults. Tiny seeded style models
(``tests/tinymodels.py``) stand in for the shipped ones. The limits are small on purpose: every accepted
request finishes in about a second on one core, and a render that would not is cut by the run-time cap,
so hundreds of random requests fit in a CI minute.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from service.server.app import Server, ServerOptions
from service.server.plane.config import PlaneConfig
from service.server.plane.dataplane import DataPlane
from service.settings import Settings

T = TypeVar("T")

STYLES = ("starry_night", "tiny_a")
FUZZ_SETTINGS: dict[str, Any] = dict(
    host="127.0.0.1",
    grpc_port=0,
    http_port=0,
    grace_period_s=1.0,
    device="cpu",
    ort_providers=["CPUExecutionProvider"],
    ort_intra_threads=1,
    max_message_bytes=4 << 20,
    max_image_bytes=256 << 10,
    max_image_pixels=1_000_000,
    max_side_slow=64,
    max_side_stylize=256,
    batch_max_delay_ms=1.0,
    job_workers=1,
    job_queue_limit=2,
    job_max_runtime_s=4.0,
)


class FuzzServer:
    """``service.server.app.Server`` on its own event loop thread; use as a context manager."""

    def __init__(self, models_dir: Path, **overrides: Any) -> None:
        settings = Settings(_env_file=None, **{**FUZZ_SETTINGS, "models_dir": models_dir, **overrides})  # type: ignore[call-arg]
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-server", daemon=True)
        self.thread.start()
        self.plane = DataPlane(PlaneConfig.from_settings(settings, warmup=False))
        self.server = Server(self.plane, ServerOptions.from_settings(settings))
        self.grpc_target = self.url = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> FuzzServer:
        self.run(self.server.start())
        self.grpc_target = f"127.0.0.1:{self.server.grpc_port}"
        self.url = f"http://127.0.0.1:{self.server.http_port}"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.server.stop(0.5))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
