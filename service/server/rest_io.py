"""Request bodies and error responses of the REST transport.

Images arrive either as the raw request body with an image content type (``curl --data-binary``) or as
``multipart/form-data`` file fields (``curl -F image=@photo.jpg``). Bodies are read with a byte cap, so an
oversized upload is refused with 413 before it is buffered, and every way a request can be malformed
(no body, wrong content type, broken multipart, non-numeric query values) ends as a typed error with a
readable message, mapped to its status by the one table in ``service.server.errormap``.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from service.core import errors
from service.server.errormap import log_unexpected, public_message, reason_of, status_for

RAW_TYPES = ("application/octet-stream",)  # accepted besides image/*
MULTIPART = "multipart/form-data"
FORM_FIELD_LIMIT = 64 * 1024  # text fields (options JSON) are small
MULTIPART_OVERHEAD = 256 * 1024  # headers and boundaries on top of the images themselves

HOW_TO_SEND = (
    "Send the image as the request body with an image content type "
    "(e.g. curl -H 'Content-Type: image/jpeg' --data-binary @photo.jpg) "
    "or as multipart/form-data (e.g. curl -F image=@photo.jpg)."
)


@dataclass
class Upload:
    """The images (by form field; a raw body is the field ``image``) and text fields of one request."""

    files: dict[str, list[bytes]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def one(self, name: str) -> bytes:
        items = self.files.get(name, [])
        if not items:
            sent = ", ".join(sorted(self.files)) or "none"
            raise errors.InvalidImage(
                f"The request has no image in the field {name!r} (file fields sent: {sent})."
            )
        if len(items) > 1:
            raise errors.InvalidArgument(f"Send one image in the field {name!r}, not {len(items)}.")
        return items[0]

    def optional(self, name: str) -> bytes | None:
        return self.one(name) if self.files.get(name) else None


def content_type_of(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _capped(request: Request, cap: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > cap:
            raise errors.ImageTooLarge(f"The request body is larger than the limit of {_human_bytes(cap)}.")
        yield chunk


def _check_length(request: Request, cap: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise errors.ImageTooLarge(
            f"The request body is {_human_bytes(int(length))}, above the limit of {_human_bytes(cap)}."
        )


async def read_upload(request: Request, max_image_bytes: int, max_images: int = 1) -> Upload:
    """Read a raw image body or a multipart form, refusing bodies above the image limits (413)."""
    ctype = content_type_of(request)
    if ctype == MULTIPART:
        cap = max_image_bytes * max_images + MULTIPART_OVERHEAD
        _check_length(request, cap)
        return await _read_multipart(request, cap, max_images)
    if ctype.startswith("image/") or ctype in RAW_TYPES:
        _check_length(request, max_image_bytes)
        body = b"".join([chunk async for chunk in _capped(request, max_image_bytes)])
        if not body:
            raise errors.InvalidImage(f"The request body is empty. {HOW_TO_SEND}")
        return Upload(files={"image": [body]})
    if not ctype:
        _check_length(request, max_image_bytes)
        body = b"".join([chunk async for chunk in _capped(request, max_image_bytes)])
        if not body:
            raise errors.InvalidImage(f"The request has no body. {HOW_TO_SEND}")
        raise errors.InvalidImage(f"The request has no Content-Type. {HOW_TO_SEND}")
    raise errors.InvalidImage(f"Unsupported Content-Type {ctype!r}. {HOW_TO_SEND}")


async def _read_multipart(request: Request, cap: int, max_images: int) -> Upload:
    parser = MultiPartParser(
        request.headers,
        _capped(request, cap),
        max_files=max_images,
        max_fields=32,
        max_part_size=FORM_FIELD_LIMIT,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise errors.InvalidImage(f"Malformed multipart/form-data body: {exc.message}") from None
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise errors.InvalidImage(f"Malformed multipart/form-data body ({exc}).") from None
    upload = Upload()
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                if data:  # browsers send an empty part for an empty file input
                    upload.files.setdefault(name, []).append(data)
            else:
                upload.fields[name] = value
    finally:
        await form.close()
    return upload


def _human_bytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KiB"


# --- parsing small values -------------------------------------------------------------------------------
def parse_json_object(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object from a query or form value (``options``, ``params``); ``{}`` when absent."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.InvalidArgument(
            f"{what} must be a JSON object: {exc.msg} at position {exc.pos}."
        ) from None
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f'{what} must be a JSON object like {{"steps": 20}}, got {text!r}.')
    return value


def form_value(text: str) -> Any:
    """A form field as JSON when it parses (``20``, ``true``, ``[256, 512]``), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_target(text: str | None) -> int | str | None:
    """A class index (``285``) or a label (``Egyptian cat``)."""
    if text is None or not text.strip():
        return None
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("-").isdigit() else stripped


# --- errors -------------------------------------------------------------------------------------------
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
