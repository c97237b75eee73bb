"""The HTTP side of the server: /metrics, /healthz, /readyz, plus the REST API (``service.server.transport.rest.routes``).

Served by uvicorn in the same event loop as the gRPC server (``service.server.app``), so one process
answers both ports and shares one data plane and one metrics registry.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from service import __version__
from service.core.errors import AtelierError
from service.server.auth.authenticator import Authenticator
from service.server.auth.rest import check_metrics_access, install_cors
from service.server.metrics import Metrics
from service.server.plane.dataplane import DataPlane
from service.server.transport.rest.errors import error_response
from service.server.transport.rest.pages import install_pages


def create_app(
    plane: DataPlane,
    registry: Metrics | None = None,
    *,
    auth: Authenticator | None = None,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The FastAPI app: operational endpoints, and the REST router when that module is installed.

    ``auth`` with keys: ``/v1`` needs a key (and ``/metrics`` if so configured); ``cors_origins``: the
    origins CORS allows (none: no CORS headers at all)."""
    metrics = registry if registry is not None else plane.metrics
    # docs_url/redoc_url None: FastAPI's own pages load from a CDN; install_pages serves them offline
    app = FastAPI(title="Atelier", version=__version__, docs_url=None, redoc_url=None)
    install_pages(app)  # the web page at /, and /docs and /redoc

    @app.get("/metrics", include_in_schema=False)
    def get_metrics(request: Request) -> Response:
        try:
            check_metrics_access(auth, request)
        except AtelierError as exc:
            return error_response(exc)
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        """Readiness: 200 only when the models are loaded and warmed up, at least one style model is
        loaded (unless ATELIER_ALLOW_NO_MODELS) and the server is not shutting down; else 503 and why."""
        reason = plane.not_ready_reason
        if reason is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reason": reason}, 503)

    if importlib.util.find_spec("service.server.transport.rest.routes") is not None:
        from service.server.transport.rest.routes import (  # type: ignore[import-not-found, unused-ignore]
            build_router,
            install_error_handlers,
        )

        install_error_handlers(app)  # JSON errors app-wide (unknown routes, wrong methods), as /v1 does
        app.include_router(build_router(plane, auth=auth))
        from service.server.transport.rest.admin import build_admin_router

        app.include_router(build_admin_router(plane, auth))  # POST /v1/admin/reload
        from service.server.transport.rest.routes_features import build_features_router

        app.include_router(build_features_router(plane, auth))  # /v1/embed, /v1/galleries, /v1/jobs/attack
        from service.server.transport.rest.v2 import install_v2

        install_v2(app, plane, auth)  # the Open Inference Protocol (KServe v2) under /v2
    install_cors(app, cors_origins)
    return app
