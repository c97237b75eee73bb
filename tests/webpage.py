"""The browser-test harness of ``tests/test_web_page*.py``: the whole server on a thread of its own (the
browser needs a live socket), its settings, a tab that records errors and requests, and page helpers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect

from service.server.app import Server, ServerOptions
from service.server.auth.authenticator import Authenticator
from service.server.plane.config import PlaneConfig
from service.server.plane.dataplane import DataPlane
from service.settings import Settings

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STYLES = ("starry_night", "tiny_b")
TIMEOUT_MS = 60_000  # generous for a busy 2-core CI; a passing test never waits this long
SAMPLES = ("chelsea", "coffee", "astronaut")
MAX_SIDE_SLOW = 256  # the server's side limit for saliency and jobs


class PageServer:
    """The whole server (gRPC and HTTP) on its own event loop thread; the browser needs a live socket."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-page-server", daemon=True)
        self.thread.start()

        async def start() -> Server:
            plane = DataPlane(PlaneConfig.from_settings(settings, warmup=False))
            auth = Authenticator.from_settings(settings)  # open unless the settings name a keys file
            server = Server(plane, ServerOptions.from_settings(settings), auth=auth)
            await server.start()
            return server

        self.server = self.run(start())
        self.url = f"http://127.0.0.1:{self.server.http_port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def close(self) -> None:
        self.http.close()
        try:
            self.run(self.server.stop(0.5))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def page_settings(models: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        host="127.0.0.1",
        grpc_port=0,  # any free ports
        http_port=0,
        grace_period_s=1,
        models_dir=models,
        ort_providers=["CPUExecutionProvider"],
        ort_intra_threads=1,
        max_side_slow=MAX_SIDE_SLOW,
        device="cpu",
        job_workers=1,
        **overrides,
    )


class Tab:
    """A new page that records console errors, uncaught exceptions and every URL it requests."""

    def __init__(self, context: BrowserContext) -> None:
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, live: PageServer) -> Page:
        self.page.goto(live.url + "/")
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")
        return self.page


def choose_sample(page: Page, name: str = "Cat") -> None:
    page.get_by_role("button", name=name, exact=True).click()
    expect(page.locator("#photo-status")).to_contain_text(name)


def image_size(page: Page, selector: str) -> tuple[int, int]:
    """The decoded size of an <img>, once the browser has decoded it (0 x 0 would mean a broken image)."""
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )
    w, h = page.eval_on_selector(selector, "i => [i.naturalWidth, i.naturalHeight]")
    return int(w), int(h)
