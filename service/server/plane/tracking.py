"""Per-call bookkeeping shared by the transports: request metrics and deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from service.core.errors import DeadlineExceeded
from service.server.errors import log_unexpected, reason_of, status_for
from service.server.metrics import Metrics


@dataclass
class RequestScope:
    """Filled in by the transport while a call runs; ``DataPlane.track`` records it on exit."""

    model: str = ""
    code: str = "OK"
    key: str = ""  # the caller's API key name ("" when the service runs without keys)

    @property
    def owner(self) -> str | None:
        """Who owns the jobs this call creates or may see: the key name, None in open mode (all)."""
        return self.key or None


@asynccontextmanager
async def track_call(
    metrics: Metrics, transport: str, method: str, model: str = ""
) -> AsyncIterator[RequestScope]:
    """Time one call: in-flight gauge, latency histogram by code, error counter by reason."""
    scope = RequestScope(model=model)
    gauge = metrics.requests_in_flight.labels(transport=transport)
    gauge.inc()
    start = time.monotonic()
    try:
        yield scope
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # the client went away
            scope.code = "CANCELLED" if transport == "grpc" else "499"
            reason = "cancelled"
        else:
            status = status_for(exc)
            scope.code = status.grpc.name if transport == "grpc" else str(status.http)
            reason = reason_of(exc)
            log_unexpected(exc, f"{transport} {method}")
        metrics.errors.labels(transport=transport, method=method, reason=reason).inc()
        raise
    finally:
        gauge.dec()
        metrics.request_duration.labels(
            transport=transport, method=method, model=metrics.model_label(scope.model), code=scope.code
        ).observe(time.monotonic() - start)
        if scope.key:
            metrics.requests_by_key.labels(key=scope.key, method=method, code=scope.code).inc()


@asynccontextmanager
async def deadline_scope(deadline: float | None) -> AsyncIterator[None]:
    """Cancel the enclosed work at ``deadline`` (monotonic) and raise ``DeadlineExceeded``."""
    if deadline is None:
        yield
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("The deadline passed before the work could start.")
    try:
        async with asyncio.timeout(remaining):
            yield
    except TimeoutError:
        raise DeadlineExceeded(f"The work did not finish within its deadline ({remaining:.2f} s).") from None
