"""Connection limits of both servers, so that open sockets cannot be held or flooded for free.

HTTP (uvicorn): a bounded request head and a deadline to send it (``GuardedH11Protocol``), an idle
keep-alive timeout, and a cap on open connections (uvicorn answers 503 above it). gRPC: server keepalive
pings find dead peers of long streams, client pings faster than the policy close the connection (gRPC's
"too many pings" strikes), and idle or old connections are closed with GOAWAY (calls in flight finish).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.server.transport.rest.protocol import guarded_protocol

if TYPE_CHECKING:
    from service.settings import Settings

_MS = 1000


@dataclass(frozen=True)
class SocketLimits:
    """Plain values from ``Settings`` (no defaults here)."""

    http_max_header_bytes: int
    http_header_timeout_s: float
    http_keep_alive_s: int
    http_max_connections: int  # 0: no cap
    grpc_keepalive_time_s: float
    grpc_keepalive_timeout_s: float
    grpc_keepalive_permit_without_calls: bool
    grpc_min_ping_interval_s: float
    grpc_max_connection_idle_s: float  # 0: never
    grpc_max_connection_age_s: float  # 0: never

    @classmethod
    def from_settings(cls, s: Settings) -> SocketLimits:
        return cls(
            http_max_header_bytes=s.http_max_header_bytes,
            http_header_timeout_s=s.http_header_timeout_s,
            http_keep_alive_s=s.http_keep_alive_s,
            http_max_connections=s.http_max_connections,
            grpc_keepalive_time_s=s.grpc_keepalive_time_s,
            grpc_keepalive_timeout_s=s.grpc_keepalive_timeout_s,
            grpc_keepalive_permit_without_calls=s.grpc_keepalive_permit_without_calls,
            grpc_min_ping_interval_s=s.grpc_min_ping_interval_s,
            grpc_max_connection_idle_s=s.grpc_max_connection_idle_s,
            grpc_max_connection_age_s=s.grpc_max_connection_age_s,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` keyword arguments: the guarded h11 protocol and uvicorn's own limits."""
        return {
            "http": guarded_protocol(self.http_header_timeout_s, self.http_max_header_bytes),
            "h11_max_incomplete_event_size": self.http_max_header_bytes,
            "timeout_keep_alive": self.http_keep_alive_s,
            "limit_concurrency": self.http_max_connections or None,
        }

    def grpc_options(self) -> list[tuple[str, int]]:
        """gRPC core channel arguments of the server (integers, milliseconds)."""
        options = [
            ("grpc.keepalive_time_ms", round(self.grpc_keepalive_time_s * _MS)),
            ("grpc.keepalive_timeout_ms", round(self.grpc_keepalive_timeout_s * _MS)),
            # Without it a client's keepalive ping on a connection with no call open counts as a strike.
            ("grpc.keepalive_permit_without_calls", int(self.grpc_keepalive_permit_without_calls)),
            # The server side of the ping policy (the name says "without data", it is the receive limit).
            ("grpc.http2.min_ping_interval_without_data_ms", round(self.grpc_min_ping_interval_s * _MS)),
            ("grpc.http2.max_ping_strikes", 2),  # gRPC's default, stated so the policy reads in one place
        ]
        if self.grpc_max_connection_idle_s > 0:
            options.append(("grpc.max_connection_idle_ms", round(self.grpc_max_connection_idle_s * _MS)))
        if self.grpc_max_connection_age_s > 0:
            options.append(("grpc.max_connection_age_ms", round(self.grpc_max_connection_age_s * _MS)))
        return options
