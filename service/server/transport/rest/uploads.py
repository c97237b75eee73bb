"""Request bodies of the REST transport.

Images arrive either as the raw request body with an image content type (``curl --data-binary``) or as
``multipart/form-data`` file fields (``curl -F image=@photo.jpg``). Bodies are read with a byte cap, so an
oversized upload is refused with 413 before it is buffered, and every way a request can be malformed
(no body, wrong content type, broken multipart, non-numeric query values) ends as a typed error with a
readable message, mapped to its status by the one table in ``service.server.errors``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service.core import errors

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
            sent = ", ".join(errors.quoted(f, 32) for f in sorted(self.files)[:8]) or "none"
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
    # isdigit() alone admits '²', which int() refuses; past 18 digits the body is above any cap.
    if length is None or not (length.isascii() and length.isdigit()):
        return
    if len(length) > 18:
        raise errors.ImageTooLarge(f"The request body is larger than the limit of {_human_bytes(cap)}.")
    if int(length) > cap:
        raise errors.ImageTooLarge(
            f"The request body is {_human_bytes(int(length))}, above the limit of {_human_bytes(cap)}."
        )


async def read_capped(request: Request, cap: int) -> bytes:
    """The whole request body, refused (413) once it is known to exceed ``cap`` bytes, before buffering
    more than ``cap``: the v2 infer route's JSON-and-binary body (``v2.py``)."""
    _check_length(request, cap)
    return b"".join([chunk async for chunk in _capped(request, cap)])


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
    raise errors.InvalidImage(f"Unsupported Content-Type {errors.quoted(ctype)}. {HOW_TO_SEND}")


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
TARGET_DIGITS = 18  # a class index is small; a longer run of digits is refused, not int()ed
_INDEX = re.compile(r"-?[0-9]+")  # ASCII digits only: str.isdigit() also admits '²', which int() refuses


def _loads(text: str, what: str) -> Any:
    """``json.loads``, with what Python's own limits refuse as a typed error: nesting deeper than the
    interpreter's recursion limit (RecursionError) and integers of more digits than
    ``sys.get_int_max_str_digits()`` (a plain ValueError). ``json.JSONDecodeError`` is left to the caller."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise errors.InvalidArgument(f"{what} is nested too deeply to read.") from None
    except ValueError:
        limit = sys.get_int_max_str_digits()
        raise errors.InvalidArgument(f"{what} holds a number of more than {limit} digits.") from None


def parse_json_object(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object from a query or form value (``options``, ``params``); ``{}`` when absent."""
    if text is None or not text.strip():
        return {}
    try:
        value = _loads(text, what)
    except json.JSONDecodeError as exc:
        raise errors.InvalidArgument(
            f"{what} must be a JSON object: {exc.msg} at position {exc.pos}."
        ) from None
    if not isinstance(value, dict):
        raise errors.InvalidArgument(
            f'{what} must be a JSON object like {{"steps": 20}}, got {errors.quoted(text)}.'
        )
    return value


def form_value(text: str, name: str = "A form field") -> Any:
    """A form field as JSON when it parses (``20``, ``true``, ``[256, 512]``), else the string itself."""
    try:
        return _loads(text, name)
    except json.JSONDecodeError:
        return text


def parse_target(text: str | None) -> int | str | None:
    """A class index (``285``) or a label (``Egyptian cat``)."""
    if text is None or not text.strip():
        return None
    stripped = text.strip()
    if not _INDEX.fullmatch(stripped):
        return stripped
    if len(stripped.lstrip("-")) > TARGET_DIGITS:
        raise errors.InvalidArgument(f"The target class index {errors.quoted(stripped)} is too large.")
    return int(stripped)
