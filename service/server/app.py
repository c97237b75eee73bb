"""Process wiring: the gRPC server and the HTTP server (uvicorn) on one event loop over one data plane,
with readiness, health, reflection, and a graceful stop.

Start order: bind both ports (so probes get answers at once), health NOT_SERVING, load and warm up the
models, then health SERVING. Stop order (SIGTERM), all within ``grace_period_s``: health NOT_SERVING and
the data plane refuses new work (UNAVAILABLE / 503 ``shutting_down``), calls in flight finish, running jobs
get ``job_grace_s`` and are then cancelled with a terminal event, both ports close at once, the executors
are released (``service/server/shutdown.py``). SIGHUP runs ``Server.reloads``: the API keys file, and the
models folder (``plane.reload_models``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import uvicorn
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.api.inference import open_inference_grpc_pb2 as inference_pb
from service.server.auth.authenticator import Authenticator
from service.server.plane.dataplane import DataPlane
from service.server.reload import ReloadHooks
from service.server.shutdown import drain_and_close
from service.server.sockets import SocketLimits
from service.server.tls import TlsConfig
from service.server.transport.grpc.decoding import add_atelier_servicer, add_servicer
from service.server.transport.grpc.inference import SERVICE as V2_SERVICE
from service.server.transport.grpc.inference import InferenceServicer
from service.server.transport.grpc.servicer import SERVICE_NAME, AtelierServicer, Health
from service.server.transport.rest.app import create_app

if TYPE_CHECKING:
    from service.settings import Settings

log = logging.getLogger("atelier.server")


@dataclass(frozen=True)
class ServerOptions:
    """The process-level settings (no defaults here: build with ``from_settings``)."""

    host: str
    grpc_port: int  # 0: any free port (the bound one is in Server.grpc_port)
    http_port: int
    max_message_bytes: int
    grace_period_s: float
    tls: TlsConfig | None  # None: plaintext on both ports
    limits: SocketLimits

    @classmethod
    def from_settings(cls, s: Settings) -> ServerOptions:
        """Raises ``TlsConfigError`` (a ValueError) when the TLS settings cannot work."""
        return cls(
            s.host,
            s.grpc_port,
            s.http_port,
            s.max_message_bytes,
            s.grace_period_s,
            TlsConfig.from_settings(s),
            SocketLimits.from_settings(s),
        )


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the process's handler stops both servers together."""

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # newer uvicorn
        yield


class Server:
    """Both transports over one ``DataPlane``; ``grpc_port`` / ``http_port`` are the bound ports."""

    def __init__(
        self,
        plane: DataPlane,
        options: ServerOptions,
        *,
        auth: Authenticator | None = None,
        cors_origins: Sequence[str] = (),
    ) -> None:
        """``auth``: API keys (None: open to every caller); ``cors_origins``: CORS on the HTTP port."""
        self.plane = plane
        self.options = options
        self.auth = auth if auth is not None else Authenticator.open()
        self.cors_origins = tuple(cors_origins)
        self.reloads = ReloadHooks()  # what SIGHUP runs (serve_until_signal installs the handler)
        if self.auth.enabled:
            self.reloads.add("API keys", self.auth.reload)
        self.reloads.add("models", plane.reload_models)
        plane.models.after_reload.append(self._after_reload)  # SIGHUP or POST /v1/admin/reload
        self.health = Health()
        self.grpc_port = 0
        self.http_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None

    async def start(self, load_models: bool = True) -> None:
        o = self.options
        limit = o.max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", limit),
                ("grpc.max_receive_message_length", limit),
                *o.limits.grpc_options(),
            ]
        )
        # The generated add_AtelierServicer_to_server, except that undecodable bytes are INVALID_ARGUMENT.
        add_atelier_servicer(AtelierServicer(self.plane, self.auth), server)
        # The Open Inference Protocol (KServe v2) on the same port and plane (transport/grpc/inference.py);
        # not listed by reflection: its stubs live in a descriptor pool of their own (gen_protos.sh).
        add_servicer(InferenceServicer(self.plane, self.auth), server, inference_pb, V2_SERVICE)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, grpc_health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        await self.health.set(False)
        address = f"{o.host}:{o.grpc_port}"
        try:
            if o.tls is None:
                self.grpc_port = server.add_insecure_port(address)
            else:
                self.grpc_port = server.add_secure_port(address, o.tls.grpc_credentials())
        except RuntimeError as exc:
            raise OSError(f"cannot listen for gRPC on {o.host}:{o.grpc_port}: {exc}") from None
        await server.start()
        self._grpc = server

        config = uvicorn.Config(
            create_app(self.plane, auth=self.auth, cors_origins=self.cors_origins),
            host=o.host,
            port=o.http_port,
            log_config=None,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=max(1, int(o.grace_period_s)),
            **o.limits.uvicorn_options(),
            **(o.tls.uvicorn_options() if o.tls is not None else {}),
        )
        self._http = _Uvicorn(config)
        self._http_task = asyncio.create_task(self._http.serve(), name="http")
        while not self._http.started:
            if self._http_task.done():  # failed to bind: uvicorn logs why and exits
                await server.stop(None)
                raise OSError(f"cannot listen for HTTP on {o.host}:{o.http_port}")
            await asyncio.sleep(0.01)
        self.http_port = self._http.servers[0].sockets[0].getsockname()[1]
        log.info(
            "listening: gRPC on %s:%d, HTTP on %s:%d%s",
            o.host,
            self.grpc_port,
            o.host,
            self.http_port,
            "" if o.tls is None else " (TLS, client certificates required)" if o.tls.mutual else " (TLS)",
        )
        (log.info if self.auth.enabled else log.warning)(self.auth.describe())
        if load_models:
            await self.plane.start()
            # Loaded is not ready: with no style model (and no ATELIER_ALLOW_NO_MODELS) the plane says why.
            await self.health.set(self.plane.ready)
            if self.plane.ready:
                log.info("ready")
            else:
                log.error("not ready: %s", self.plane.not_ready_reason)

    async def _after_reload(self) -> None:
        """Readiness follows what serves after a model reload (one can make an empty server ready)."""
        await self.health.set(self.plane.ready)
        self.plane.metrics.ready.set(1 if self.plane.ready else 0)

    async def mark_ready(self) -> None:
        """For servers started with ``load_models=False`` once the plane has been started separately."""
        await self.health.set(self.plane.ready)

    async def stop(self, grace_s: float | None = None) -> None:
        grace = self.options.grace_period_s if grace_s is None else grace_s
        log.info("stopping: draining in-flight calls for up to %.1f s", grace)
        await self.health.set(False)
        self.plane.draining()
        # One grace for both transports and the jobs, and every job ends with a terminal event.
        await drain_and_close(self.plane, self._grpc, self._http, self._http_task, grace)
        await self.plane.close(0)  # drained: only the executors and sessions are left to release
        await self.auth.close()  # the shared rate limits' Redis connection, when there is one
        log.info("stopped")


async def serve_until_signal(
    plane: DataPlane,
    options: ServerOptions,
    *,
    auth: Authenticator | None = None,
    cors_origins: Sequence[str] = (),
) -> int:
    """Run until SIGTERM or SIGINT, then stop gracefully; returns the exit code (0). SIGHUP runs the
    server's reload hooks (``Server.reloads``: the API keys file, ...) and keeps serving."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = Server(plane, options, auth=auth, cors_origins=cors_origins)
    server.reloads.install(loop)
    starting = asyncio.create_task(server.start())
    waiting = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if starting in done:
        if starting.exception() is not None:  # failed to bind or to load: release what started, then fail
            waiting.cancel()
            await server.stop(0)
            starting.result()
        await waiting
    else:
        starting.cancel()
    log.info("received a stop signal")
    await server.stop()
    return 0
