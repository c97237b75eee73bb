"""Server-Sent Events framing (the WHATWG HTML "server-sent events" text format) with keep-alives.

A stream is a sequence of blocks separated by a blank line: ``id:``, ``event:`` and one ``data:`` line per
line of the payload. Comment lines (starting with ``:``) are ignored by clients; one is sent when nothing
else happened for ``keepalive_s`` so that proxies with idle timeouts do not cut a long job's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

T = TypeVar("T")

MEDIA_TYPE = "text/event-stream"
# No caching, and ask nginx-style proxies not to buffer the stream (events must arrive as they happen).
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keep-alive\n\n"


def format_event(data: Any, event: str | None = None, event_id: str | int | None = None) -> bytes:
    """One SSE block; ``data`` is sent as compact JSON (so it never contains a raw newline)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False)
    lines.extend(f"data: {line}" for line in payload.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


async def with_keepalive(items: AsyncIterator[T], keepalive_s: float) -> AsyncIterator[T | None]:
    """Yield each item of ``items``; yield ``None`` whenever ``keepalive_s`` passes without one.

    The pending ``__anext__`` is kept across keep-alives (not cancelled by a timeout), so no item is lost
    and the source generator is never interrupted mid-step.
    """
    iterator = aiter(items)
    pending: asyncio.Task[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=keepalive_s)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        aclose: Callable[[], Any] | None = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
