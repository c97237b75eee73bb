"""Error responses of the REST transport: every failure as ``{"error": {"reason", "message"}}``, with its
status from the one table in ``service.server.errors``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core import errors
from service.server.errors import log_unexpected, public_message, reason_of, status_for


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
        suffix = f" (got {got!r})" if isinstance(got, str | int | float) else ""
        parts.append(f"{where}: {msg[:1].lower()}{msg[1:]}{suffix}.")
    return " ".join(parts) or "The request is invalid."


def install_error_handlers(app: FastAPI) -> None:
    """App-wide JSON errors: typed errors, validation errors, unknown routes, wrong methods and bugs.

    The ``/v1`` routes answer their own errors (``rest._route_class``); these handlers give every other
    route of the app (and unknown paths) the same ``{"error": {"reason", "message"}}`` shape.
    """

    async def on_atelier_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(errors.InvalidArgument(validation_message(exc)))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
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

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log_unexpected(exc, f"rest {request.method} {request.url.path}")
        return error_response(exc)

    app.add_exception_handler(errors.AtelierError, on_atelier_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def route_class(count_error: Callable[[str, str], None], method_names: Mapping[str, str]) -> type[APIRoute]:
    """Routes that answer their own errors as JSON through the error table, whatever app includes them.

    ``count_error(method, reason)`` counts requests refused before the route's body ran (validation), with
    ``method_names[route function name]`` as the method.

    FastAPI validates query values inside the route, so a non-numeric ``strength`` is caught here too and
    answered as ``InvalidArgument`` (never FastAPI's default 422 body).
    """

    class RestRoute(APIRoute):
        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()
            method = method_names.get(self.name, self.name)

            async def run(request: Request) -> Response:
                try:
                    response: Response = await handler(request)
                    return response
                except RequestValidationError as exc:
                    err = errors.InvalidArgument(validation_message(exc))
                    count_error(method, err.reason)
                    return error_response(err)
                except Exception as exc:  # typed errors and bugs alike, as JSON through the error table
                    log_unexpected(exc, f"rest {method}")  # bugs only; typed errors are not logged
                    return error_response(exc)

            return run

    return RestRoute
