"""Error responses of the REST transport: every failure as ``{"error": {"reason", "message"}}``, with its
status from the one table in ``service.server.errors``; and the route class that tracks and answers every
``/v1`` call in one place (the REST counterpart of the gRPC servicer's ``_rpc``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core import errors
from service.server.errors import public_message, reason_of, status_for
from service.server.metrics import Metrics
from service.server.plane.tracking import RequestScope, track_call


def error_body(reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": reason, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(exc: BaseException) -> JSONResponse:
    """The JSON error for any exception: status from the error table, the typed error's message."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    details: dict[str, Any] = {}
    if isinstance(exc, errors.ResourceExhausted):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    elif isinstance(exc, errors.NotReady):
        headers["Retry-After"] = "1"
    elif isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="atelier"'  # RFC 6750: how to authenticate
    if isinstance(exc, errors.UnknownModel):
        details["available"] = exc.available
    body = error_body(reason_of(exc), public_message(exc), **details)
    return JSONResponse(body, status_code=status.http, headers=headers)


def _location(loc: Sequence[Any]) -> str:
    where = {"query": "Query parameter", "path": "Path parameter", "header": "Header", "body": "Body field"}
    if len(loc) >= 2:
        return f"{where.get(str(loc[0]), str(loc[0]).capitalize())} {'.'.join(map(str, loc[1:]))!r}"
    return "The request"


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one readable sentence per problem."""
    parts = []
    for err in exc.errors():
        where = _location(err.get("loc", ()))
        if err.get("type") == "missing":
            parts.append(f"{where} is required.")
            continue
        msg = str(err.get("msg", "is invalid"))
        got = err.get("input")
        shown = errors.quoted(got) if isinstance(got, str) else repr(got)  # a query value may be huge
        suffix = f" (got {shown})" if isinstance(got, str | int | float) else ""
        parts.append(f"{where}: {msg[:1].lower()}{msg[1:]}{suffix}.")
    return " ".join(parts) or "The request is invalid."


def http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own HTTP errors (unknown path 404, wrong method 405) in the same JSON shape."""
    reasons: Mapping[int, str] = {404: "not_found", 405: "method_not_allowed", 400: "invalid_argument"}
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"No such route: {request.method} {request.url.path}. The API is listed at /docs."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}. The API is listed at /docs."
    return JSONResponse(
        error_body(reasons.get(exc.status_code, "http_error"), message),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def install_error_handlers(app: FastAPI) -> None:
    """App-wide JSON errors for requests that never reach a route: unknown paths and wrong methods.

    Everything that reaches a ``/v1`` route is tracked and answered by its route class (``route_class``),
    so these handlers see only Starlette's routing errors.
    """

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return http_error_response(request, exc)

    app.add_exception_handler(StarletteHTTPException, on_http_error)


def call_scope(request: Request) -> RequestScope:
    """The running call's ``RequestScope`` (a FastAPI dependency): routes set ``scope.model`` on it."""
    scope: RequestScope = request.state.atelier_scope
    return scope


CallScope = Annotated[RequestScope, Depends(call_scope)]


def query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameter names (aliases) a route declares, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_names(sub)
    return frozenset(names)


def check_query(request: Request, known: frozenset[str], route: str) -> None:
    """Refuse query parameters the route does not declare (InvalidArgument naming the known ones)."""
    unknown = sorted(set(request.query_params) - known)
    if not unknown:
        return
    shown = ", ".join(errors.quoted(name) for name in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    takes = ", ".join(sorted(known)) or "none"
    noun = "parameter" if len(unknown) == 1 else "parameters"
    raise errors.InvalidArgument(
        f"Unknown query {noun} {shown}{more} for {request.method} {route}. Known: {takes}."
    )


def route_class(
    metrics: Metrics,
    method_names: Mapping[str, str],
    respond: Callable[[BaseException], Response] = error_response,
) -> type[APIRoute]:
    """Routes that track every call and answer every error once, as a gRPC interceptor would.

    Each call is timed by ``track_call`` (in-flight gauge, latency by status code, errors by reason) with
    ``method_names[route function name]`` as the method label, and any exception becomes the JSON error
    of the one status table. FastAPI validates query values inside the route handler, so a non-numeric
    ``strength`` is caught here too and answered as ``InvalidArgument`` (never FastAPI's 422 body).
    ``respond`` writes the error (``/v2`` answers in the Open Inference Protocol's ``{"error": "..."}``).
    FastAPI ignores query parameters a route does not declare, so a misspelt ``strenght=0.5`` would
    silently render at the default strength: they are refused here, listing the names the route takes.
    """

    class RestRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()
            method = method_names.get(self.name, self.name)
            known = query_names(self.dependant)

            async def run(request: Request) -> Response:
                try:
                    async with track_call(metrics, "rest", method) as scope:
                        request.state.atelier_scope = scope
                        check_query(request, known, self.path)
                        try:
                            response: Response = await handler(request)
                        except RequestValidationError as exc:
                            raise errors.InvalidArgument(validation_message(exc)) from None
                        except StarletteHTTPException as exc:  # FastAPI's own: a body it cannot parse
                            raise errors.InvalidArgument(str(exc.detail)) from None
                        scope.code = str(response.status_code)
                        return response
                except Exception as exc:  # tracked above (bugs logged there): answer through the table
                    return respond(exc)

            return run

    return RestRoute
