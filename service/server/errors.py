"""The one table from the core's typed errors to transport status codes.

Both transports use it (gRPC: ``grpc.StatusCode``; REST: the HTTP status), so the same failure reads the
same over either. Bad input always maps to a 4xx-class status: never UNKNOWN or INTERNAL. An exception
that is not an ``AtelierError`` is a bug on our side: it becomes INTERNAL / 500 with a generic message
(the details go to the log, not to the caller).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import grpc

from service.core import errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    grpc: grpc.StatusCode
    http: int


# Every class of service.core.errors.ALL_ERRORS; tests/test_server_errors.py walks each entry.
# Subclasses come before their bases only for readability: lookup walks the MRO, most specific first.
ERROR_TABLE: dict[type[errors.AtelierError], Status] = {
    errors.InvalidImage: Status(grpc.StatusCode.INVALID_ARGUMENT, 400),
    # The caller can fix it (send a smaller image), so INVALID_ARGUMENT rather than RESOURCE_EXHAUSTED,
    # which clients treat as "retry later"; HTTP has a dedicated code.
    errors.ImageTooLarge: Status(grpc.StatusCode.INVALID_ARGUMENT, 413),
    errors.InvalidArgument: Status(grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.UnknownModel: Status(grpc.StatusCode.NOT_FOUND, 404),
    errors.UnknownJob: Status(grpc.StatusCode.NOT_FOUND, 404),
    errors.NotFound: Status(grpc.StatusCode.NOT_FOUND, 404),
    # A backbone whose weights are not installed on this server: the request is valid, the server lacks it.
    errors.WeightsNotFound: Status(grpc.StatusCode.FAILED_PRECONDITION, 424),
    errors.ModelLoadError: Status(grpc.StatusCode.FAILED_PRECONDITION, 424),
    errors.Cancelled: Status(grpc.StatusCode.CANCELLED, 499),
    errors.DeadlineExceeded: Status(grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    errors.ResourceExhausted: Status(grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    # REST adds ``WWW-Authenticate: Bearer`` (RFC 6750); PERMISSION_DENIED would say the key is known.
    errors.Unauthenticated: Status(grpc.StatusCode.UNAUTHENTICATED, 401),
    errors.ShuttingDown: Status(grpc.StatusCode.UNAVAILABLE, 503),
    errors.NotReady: Status(grpc.StatusCode.UNAVAILABLE, 503),
    errors.AtelierError: Status(grpc.StatusCode.INTERNAL, 500),
}

INTERNAL = Status(grpc.StatusCode.INTERNAL, 500)
INTERNAL_MESSAGE = "Internal server error; the server log has the details."

# Trailing metadata key (gRPC) and header (HTTP: Retry-After, rounded up) carrying the retry hint.
RETRY_AFTER_KEY = "retry-after-s"


def status_for(exc: BaseException) -> Status:
    """The status of an error: the table entry of its most specific class, INTERNAL for anything else."""
    if isinstance(exc, errors.AtelierError):
        for cls in type(exc).__mro__:
            status = ERROR_TABLE.get(cls)
            if status is not None:
                return status
    return INTERNAL


# Errors about the server's own files (missing or broken weights and models): their messages are written for
# the operator and may name paths on the server, which a remote caller must not learn. Paths in them are
# redacted unless the error carries a ``public`` message of its own; the full message goes to the log.
SERVER_SIDE: tuple[type[errors.AtelierError], ...] = (errors.WeightsNotFound, errors.ModelLoadError)
_PATH = re.compile(r"(?<![\w.~-])(?:~|\.{1,2})?/[^\s'\"(),;]*[^\s'\"(),;.:]")


def redact_paths(text: str) -> str:
    """``text`` with absolute and home-relative file paths replaced by ``<path on the server>``."""
    return _PATH.sub("<path on the server>", text)


def public_message(exc: BaseException) -> str:
    """What the caller is told: the typed error's message (its ``public`` one when set, paths redacted for
    ``SERVER_SIDE`` errors), or a generic line for unexpected exceptions."""
    if isinstance(exc, errors.AtelierError):
        if isinstance(exc, errors.ResourceExhausted):
            return f"{exc.message} Retry after {exc.retry_after_s:g} s."
        if exc.public is not None:
            return exc.public
        if isinstance(exc, SERVER_SIDE):
            return redact_paths(exc.message)
        return exc.message
    return INTERNAL_MESSAGE


def reason_of(exc: BaseException) -> str:
    """The short label for ``atelier_errors_total{reason=...}``."""
    if isinstance(exc, errors.AtelierError):
        return exc.reason
    return "internal"


def log_unexpected(exc: BaseException, where: str) -> None:
    """Log an exception that is not a typed error (a bug): full traceback, once, at ERROR; and, at WARNING,
    the full message of a typed error whose caller was told less (``public_message``)."""
    if not isinstance(exc, errors.AtelierError):
        log.error("unexpected error in %s", where, exc_info=exc)
    elif public_message(exc) != exc.message and not isinstance(exc, errors.ResourceExhausted):
        log.warning("%s: %s: %s", where, exc.reason, exc.message)
