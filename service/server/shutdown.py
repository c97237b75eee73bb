"""SIGTERM: one grace period for everything, and every job told how it ended.

Measured before this module: a stop took 21.6 s against a 10 s grace (the gRPC drain and the HTTP drain
ran one after the other), accepted jobs ended without a terminal state (the SSE stream was cut without
``done``, the gRPC stream ended UNAVAILABLE), and an in-flight REST call got uvicorn's plain-text 500
when its task was cancelled. The stop now runs in two phases inside ``grace_period_s``:

1. Drain, with both ports still open. The plane refuses new calls with ``ShuttingDown`` (gRPC
   UNAVAILABLE, HTTP 503 with a JSON body, reason ``shutting_down``, Retry-After), so a client that
   reaches this instance is told to go elsewhere instead of meeting a closed port mid-connection. Calls in
   flight finish. Queued jobs are cancelled at once; running jobs may finish for ``job_grace_s``, then are
   cancelled with the reason "server shutting down" (``JobPools.drain``). Their terminal events reach the
   SSE streams (``done``), the gRPC streams (CANCELLED with that reason) and ``GET /v1/jobs/{id}``.
   The phase ends as soon as no job is left and no call is in flight, and at the latest ``DELIVERY_S``
   before the grace ends.
2. Close both transports at once (``grpc.aio.Server.stop`` and uvicorn's exit run concurrently) with what
   is left of the grace, so the streams still open send their last event; then the executors go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc
    import uvicorn

    from service.server.plane.dataplane import DataPlane

log = logging.getLogger("atelier.server")

DELIVERY_S = 1.0  # of the grace, kept for the transports to send the last events (a quarter at most)
MIN_HTTP_CLOSE_S = 0.5  # uvicorn's close timeout cancels what is still running: never leave it 0
POLL_S = 0.02
TRANSPORTS = ("grpc", "rest")


def calls_in_flight(plane: DataPlane) -> int:
    """Calls being handled now on both transports (the ``atelier_requests_in_flight`` gauge)."""
    registry = plane.metrics.registry
    total = 0.0
    for transport in TRANSPORTS:
        total += registry.get_sample_value("atelier_requests_in_flight", {"transport": transport}) or 0.0
    return int(total)


async def drain_and_close(
    plane: DataPlane,
    grpc_server: grpc.aio.Server | None,
    http: uvicorn.Server | None,
    http_task: asyncio.Task[None] | None,
    grace_s: float,
) -> None:
    """Both phases of the stop (the module docstring); ``plane.draining()`` must have been called."""
    start = time.monotonic()
    end = start + grace_s
    drained_by = end - min(DELIVERY_S, grace_s / 4)
    job_grace = min(plane.config.job_grace_s, max(0.0, drained_by - start))
    jobs = asyncio.create_task(plane.pools.adrain(job_grace, drained_by), name="drain-jobs")
    while time.monotonic() < drained_by and not (jobs.done() and calls_in_flight(plane) == 0):
        await asyncio.sleep(POLL_S)
    left = max(0.0, end - time.monotonic())
    log.info(
        "drained in %.2f s (%d calls still in flight); closing both ports within %.2f s",
        time.monotonic() - start,
        calls_in_flight(plane),
        left,
    )
    closing: list[asyncio.Future[object] | asyncio.Task[None]] = []
    if grpc_server is not None:
        closing.append(asyncio.ensure_future(grpc_server.stop(left)))
    if http is not None and http_task is not None:
        http.config.timeout_graceful_shutdown = max(MIN_HTTP_CLOSE_S, left)  # type: ignore[assignment]
        http.should_exit = True
        closing.append(http_task)
    await asyncio.gather(*closing, return_exceptions=True)
    await jobs  # done by now: the drain ends at ``drained_by`` at the latest
