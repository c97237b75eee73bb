"""How a draining API replica ends its streams of shared-queue jobs, for both transports.

A shared job (``Job.shared``: on Redis, run by the workers) outlives the replica that streams it. When the
replica drains (SIGTERM sets ``plane.drain_started``), each of its streams of such a job ends at once,
saying that the job goes on and where to follow it: a gRPC stream with ``ShuttingDown`` (UNAVAILABLE) as
its status (``transport/grpc/jobs.py``), an SSE stream with a last ``shutting_down`` event
(``transport/rest/schemas.py``). Neither cancels the job. Ending them at drain start, rather than when
the ports close, lets every client read why its stream ended and reconnect to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from service.core.errors import ShuttingDown

T = TypeVar("T")


def handed_over(job_id: str) -> ShuttingDown:
    """How a draining replica ends a shared job's stream: the job goes on, elsewhere."""
    return ShuttingDown(
        f"This server is shutting down; job {job_id} goes on in the shared queue and is not cancelled. "
        f"Watch it on another replica: WatchJob(job_id={job_id!r}) or GET /v1/jobs/{job_id}."
    )


async def until_set(
    items: AsyncIterator[T], stop: asyncio.Event, error: Callable[[], BaseException]
) -> AsyncIterator[T]:
    """``items`` until ``stop`` is set; then the pending read is cancelled and ``error()`` raised."""
    iterator = aiter(items)
    stopping = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                raise error()
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield item
    finally:
        stopping.cancel()
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
