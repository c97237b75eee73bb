"""Typed errors of the core library.

Every error a caller can cause or meet has its own class here; the transports map each class to one gRPC
status and one HTTP status (``service.server.errors``), and a test walks every entry. ``reason`` is a
short stable label used in metrics (``atelier_errors_total{reason=...}``) and in JSON error bodies.
"""

from __future__ import annotations

from collections.abc import Iterable

ECHO_CHARS = 80  # most characters of caller-supplied text an error message repeats


def quoted(text: object, limit: int = ECHO_CHARS) -> str:
    """Caller-supplied text for an error message: ``repr`` of it, cut to ``limit`` characters.

    Every message that repeats what a caller sent (a style name, an option name or value, a job id) goes
    through this, so a 1 MB name gives a one-line error instead of a 1 MB one (which gRPC clients refuse
    as an oversized trailer, reading RESOURCE_EXHAUSTED).
    """
    if not isinstance(text, str):
        text = repr(text) if isinstance(text, bytes | bytearray) else str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class AtelierError(Exception):
    """Base class: a failure with a message a person understands."""

    reason: str = "error"

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # What a remote caller is told when ``message`` holds what only the operator should see (file
        # paths on the server); None: the message itself. Local callers (the CLI) print ``message``.
        self.public = public

    def __str__(self) -> str:
        return self.message


class InvalidImage(AtelierError):
    """The bytes are not a readable image of a supported format (corrupt, truncated, not an image)."""

    reason = "invalid_image"


class ImageTooLarge(AtelierError):
    """The encoded size or the pixel count is above the configured limit (decompression bombs land here)."""

    reason = "image_too_large"


class InvalidArgument(AtelierError):
    """An option is out of range or malformed (strength 1.5, unknown method, size 0, ...)."""

    reason = "invalid_argument"


class NotFound(AtelierError):
    """A named thing does not exist."""

    reason = "not_found"


class UnknownModel(NotFound):
    """A style, backbone or model name that is not loaded; the message lists what exists."""

    reason = "unknown_model"

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        names = sorted(available)
        listed = ", ".join(names) if names else "none"
        super().__init__(f"Unknown {kind} {quoted(name)}. Available: {listed}.")
        self.kind = kind
        self.name = name
        self.available = names


class UnknownJob(NotFound):
    """A job id that never existed or whose result has expired."""

    reason = "unknown_job"


class WeightsNotFound(AtelierError):
    """A backbone was asked for whose weights file is not on this machine (nothing downloads at run time)."""

    reason = "weights_not_found"


class NotInstalled(WeightsNotFound):
    """A valid call needs a model this server does not have installed (a ``style_image`` call with no
    arbitrary-style decoder in the models folder). The request is fine and another server (or an install)
    can serve it, so it reads as the missing weights do: FAILED_PRECONDITION / 424, reason
    ``weights_not_found`` (a subclass, so the error table and its documented reasons stay as they are).
    Its message names no server path and is told to callers as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, public=message)


class ModelLoadError(AtelierError):
    """A model file exists but is corrupt, mismatched or fails to load."""

    reason = "model_load_error"


class Cancelled(AtelierError):
    """The work was cancelled by its caller (client went away, DELETE on a job, shutdown)."""

    reason = "cancelled"


class DeadlineExceeded(AtelierError):
    """The work did not finish before its deadline or run-time cap."""

    reason = "deadline_exceeded"


class ResourceExhausted(AtelierError):
    """A queue is full; the caller should retry after ``retry_after_s`` seconds."""

    reason = "resource_exhausted"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unauthenticated(AtelierError):
    """The server requires an API key and the call carried none, or one it does not know (or revoked)."""

    reason = "unauthenticated"


class NotReady(AtelierError):
    """The service is starting (models loading or warming up) or shutting down."""

    reason = "not_ready"


class ShuttingDown(NotReady):
    """The server is shutting down: it refuses new work, and work it could not finish in time ends with
    this (the caller may retry on another instance)."""

    reason = "shutting_down"


ALL_ERRORS: tuple[type[AtelierError], ...] = (
    AtelierError,
    InvalidImage,
    ImageTooLarge,
    InvalidArgument,
    NotFound,
    UnknownModel,
    UnknownJob,
    WeightsNotFound,
    ModelLoadError,
    Cancelled,
    DeadlineExceeded,
    ResourceExhausted,
    Unauthenticated,
    NotReady,
    ShuttingDown,
)
