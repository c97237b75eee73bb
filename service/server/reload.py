"""What SIGHUP does: re-read configuration without a restart, through a list of named callbacks.

Each part that can reload registers one (``Server.reloads.add("api keys", auth.reload)``); SIGHUP runs
them all, in the order added, on the event loop. A callback may be a plain function (quick work such as
re-reading a small file) or return an awaitable (slow work, which should hand itself to a thread). One
that fails is logged and the others still run, so a broken model never keeps a key revocation back.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger("atelier.server")

ReloadCallback = Callable[[], object | Awaitable[object]]


class ReloadHooks:
    """The reload callbacks of one server; ``run`` is what the SIGHUP handler schedules."""

    def __init__(self) -> None:
        self._hooks: list[tuple[str, ReloadCallback]] = []
        self._running: asyncio.Task[None] | None = None

    def add(self, name: str, callback: ReloadCallback) -> None:
        self._hooks.append((name, callback))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._hooks]

    async def run(self) -> None:
        """Run every callback once, in order; exceptions are logged, never raised."""
        log.info("reloading: %s", ", ".join(self.names) or "nothing registered")
        for name, callback in self._hooks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("reload of %s failed; it keeps its previous state", name)

    def signal(self) -> None:
        """The SIGHUP handler: schedule ``run`` (a second SIGHUP while one runs waits for it)."""
        previous = self._running

        async def after_previous() -> None:
            if previous is not None:
                await asyncio.shield(previous)
            await self.run()

        self._running = asyncio.get_running_loop().create_task(after_previous(), name="reload")

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGHUP, self.signal)
