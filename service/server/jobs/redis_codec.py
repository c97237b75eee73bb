"""JSON forms of what the shared queue stores: errors, progress and the events of a job's stream.

An error crosses as its class name (one of ``service.core.errors.ALL_ERRORS``) and the message a caller
may read (``public_message``: paths redacted, a bug's details left in the worker's log), so a replica
maps a worker's failure to the same status code as an in-process one. Previews are never in an event:
an event only says that one was stored (``job:<id>:pv``), and a reader fetches it when it wants it; nor
are results, whose images (an attack's perturbation too) are stored once in ``job:<id>:out``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from service.core import errors
from service.core.progress import Progress
from service.server.errors import public_message
from service.server.jobs.job import JobEvent, JobOutput, JobState

_BY_NAME: dict[str, type[errors.AtelierError]] = {cls.__name__: cls for cls in errors.ALL_ERRORS}
INTERNAL = "internal"  # the class name stored for an unexpected exception (a bug)


def encode_error(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    name = type(exc).__name__ if type(exc).__name__ in _BY_NAME else INTERNAL
    body: dict[str, Any] = {"cls": name, "message": public_message(exc)}
    if isinstance(exc, errors.ResourceExhausted):
        body["message"], body["retry_after_s"] = exc.message, exc.retry_after_s
    return json.dumps(body)


def decode_error(text: str | bytes | None) -> BaseException | None:
    if not text:
        return None
    body = json.loads(text)
    cls = _BY_NAME.get(str(body.get("cls")))
    message = str(body.get("message", ""))
    if cls is None:
        return RuntimeError(message)  # answered INTERNAL / 500, as an in-process bug is
    if cls is errors.ResourceExhausted:
        return errors.ResourceExhausted(message, retry_after_s=float(body.get("retry_after_s", 1.0)))
    err = cls.__new__(cls)
    errors.AtelierError.__init__(err, message)
    return err


def lost_error(attempts: int) -> str:
    """The failure of a job whose worker was lost ``attempts`` times (``ATELIER_QUEUE_MAX_ATTEMPTS``)."""
    return encode_error(
        errors.AtelierError(
            f"The job's worker was lost (killed, or cut off from Redis) on each of its {attempts} attempts; "
            "it is not run again. Submit it again, or look at the workers' logs."
        )
    )


def progress_body(p: Progress) -> dict[str, Any]:
    """A progress report as JSON values (the preview travels apart; a non-finite loss is left out)."""
    return {
        "step": p.step, "total": p.total,
        "losses": {key: float(v) for key, v in p.losses.items() if math.isfinite(float(v))},
        "elapsed_s": p.elapsed_s, "eta_s": p.eta_s, "stage": p.stage,
    }  # fmt: skip


def encode_progress(p: Progress) -> str:
    return json.dumps(progress_body(p))


def decode_progress(text: str | bytes | None) -> Progress | None:
    if not text:
        return None
    body = json.loads(text)
    return Progress(
        step=int(body["step"]),
        total=int(body["total"]),
        losses={key: float(v) for key, v in body.get("losses", {}).items()},
        elapsed_s=float(body.get("elapsed_s", 0.0)),
        eta_s=None if body.get("eta_s") is None else float(body["eta_s"]),
        stage=str(body.get("stage", "")),
    )


def encode_result(out: JobOutput) -> tuple[str, bytes]:
    """A result as (metadata JSON, bytes) for the ``finish`` script, so that it is stored once.

    The bytes are the image followed by each bytes-valued ``extra`` (an attack's ``perturbation`` PNG),
    all in the one ``job:<id>:out`` value; the metadata (which the terminal event also carries) names
    those parts and their lengths and holds the JSON-valued extras, never an image. Other extras (the
    saliency map array, which never crosses) are left out.
    """
    parts = [(key, bytes(v)) for key, v in out.extra.items() if isinstance(v, bytes | bytearray)]
    extra = {key: v for key, v in out.extra.items() if not isinstance(v, bytes | bytearray) and _jsonable(v)}
    meta = {"content_type": out.content_type, "width": out.width, "height": out.height, "bytes": len(out.data),
            "extra": extra, "parts": [[key, len(blob)] for key, blob in parts]}  # fmt: skip
    return json.dumps(meta), b"".join([out.data, *(blob for _, blob in parts)])


def decode_result(meta: str | bytes | None, data: bytes | None) -> JobOutput | None:
    """The ``JobOutput`` that ``encode_result`` stored: the image, its extras and parts put back."""
    if not meta or data is None:
        return None
    body = json.loads(meta)
    size = int(body.get("bytes", len(data)))
    extra: dict[str, Any] = dict(body.get("extra", {}))
    offset = size
    for key, length in body.get("parts", []):
        extra[str(key)] = data[offset : offset + int(length)]
        offset += int(length)
    return JobOutput(data[:size], str(body["content_type"]), int(body["width"]), int(body["height"]), extra)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def monotonic_of(epoch: float | str | bytes | None) -> float | None:
    """A wall-clock time stored in Redis as this process's ``time.monotonic()`` value (None stays None)."""
    if epoch in (None, "", b""):
        return None
    assert epoch is not None
    return time.monotonic() - (time.time() - float(epoch))


def epoch_of(monotonic: float | None) -> float | None:
    """A ``time.monotonic()`` value (a deadline) as a wall-clock time other machines can read."""
    return None if monotonic is None else time.time() + (monotonic - time.monotonic())


def event_of(job_id: str, kind: str, body: dict[str, Any], progress: Progress | None) -> JobEvent:
    """A ``JobEvent`` from a stream entry (``progress``: the latest known, kept across state events)."""
    state = JobState(body["state"])
    return JobEvent(
        job_id,
        kind,
        state,
        progress=progress,
        error=decode_error(body.get("error")),
        duration_s=float(body["duration"]) if "duration" in body else None,
    )
