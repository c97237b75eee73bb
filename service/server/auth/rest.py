"""The HTTP side of authentication: the ``/v1`` router dependency, the ``/metrics`` guard, and CORS.

The dependency runs inside the route class of ``transport/rest/errors.py`` (before the route reads its
body or validates its query), so a refused call is tracked and answered like every other error: 401 with
``WWW-Authenticate: Bearer`` or 429 with ``Retry-After``, in the usual JSON shape. It is added only when a
keys file is configured, so an open server's routes and OpenAPI document are what they were without keys.
The operational paths (``/healthz``, ``/readyz``, the web page and its files, ``/docs``, ``/redoc``,
``/openapi.json``) are outside the router and never ask for a key; ``/metrics`` does when
``ATELIER_METRICS_REQUIRE_KEY`` is set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.server.auth.authenticator import Authenticator
from service.server.plane.tracking import RequestScope

# Declared for OpenAPI only (the "Authorize" button of /docs); the check reads the header itself so that
# a missing key and a malformed header get the same clear message.
BEARER = HTTPBearer(auto_error=False, description="an API key from `atelier keys new`")
BearerDeclared = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]

# Response headers a browser page may read across origins (the API's own, beyond the CORS-safelisted).
EXPOSED_HEADERS = (
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "Server-Timing",
    "X-Atelier-Model",
    "X-Atelier-Model-Version",
    "X-Atelier-Provider",
    "X-Atelier-Batch-Size",
    "X-Atelier-Method",
    "X-Atelier-Target",
    "X-Atelier-Map-Size",
    "X-Atelier-Predictions",
)


def key_dependency(
    auth: Authenticator,
) -> Callable[[Request, BearerDeclared], Awaitable[None]]:
    """A router dependency: the caller's key name onto the call's ``RequestScope`` (``scope.key``)."""

    async def require_key(request: Request, _: BearerDeclared) -> None:
        name = await auth.check_async(request.headers.get("authorization"))
        scope: RequestScope | None = getattr(request.state, "atelier_scope", None)
        if scope is not None:
            scope.key = name

    return require_key


def check_metrics_access(auth: Authenticator | None, request: Request) -> None:
    """Raise ``Unauthenticated`` / ``ResourceExhausted`` when ``/metrics`` needs a key this call lacks."""
    if auth is not None and auth.metrics_require_key:
        auth.check(request.headers.get("authorization"))


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """CORS for exactly ``origins`` (none: no middleware, no CORS headers, cross-origin reads blocked).

    Keys travel in the Authorization header, never cookies, so credentials mode stays off and a page
    from an allowed origin must hold its own key.
    """
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )
