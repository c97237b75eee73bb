"""JSON bodies of the REST API (pydantic models, so /docs and /openapi.json describe them exactly)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from service.core.errors import ShuttingDown
from service.server.errors import public_message, reason_of
from service.server.jobs.manager import Job, JobEvent, JobState
from service.server.jobs.streams import handed_over, until_set
from service.server.transport.rest import sse

API_PREFIX = "/v1"


class ErrorDetail(BaseModel):
    reason: str = Field(
        description="stable short label, e.g. invalid_image, unknown_model, resource_exhausted"
    )
    message: str = Field(description="what went wrong, for a person")
    details: dict[str, Any] | None = Field(None, description="e.g. the available styles for unknown_model")


class ErrorBody(BaseModel):
    error: ErrorDetail


class StyleOut(BaseModel):
    name: str
    style: str
    arch: str
    version: str
    title: str
    artist: str
    year: str
    licence: str
    provider: str = Field(description="ONNX Runtime execution provider in use, e.g. CPUExecutionProvider")
    precision: str
    net: str = Field(description="the model (file) serving the style: its own name, or a multi-style net's")


class StylesOut(BaseModel):
    styles: list[StyleOut]


class PredictionOut(BaseModel):
    index: int
    label: str
    probability: float


class ClassifyOut(BaseModel):
    backbone: str
    predictions: list[PredictionOut]


class ProgressOut(BaseModel):
    step: int
    total: int
    fraction: float
    stage: str
    losses: dict[str, float]
    elapsed_s: float
    eta_s: float | None


class JobUrls(BaseModel):
    status: str
    result: str
    events: str


class JobResultInfo(BaseModel):
    content_type: str
    width: int
    height: int
    bytes: int


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="gatys or deepdream (saliency runs as a job too, awaited by its call)")
    state: JobState = Field(description="queued, running, succeeded, failed, cancelled or deadline_exceeded")
    progress: ProgressOut | None = None
    timings: dict[str, float] = Field(description="seconds: queued, running (so far or in total), total")
    result: JobResultInfo | None = Field(None, description="set once the job has succeeded")
    error: ErrorDetail | None = Field(None, description="set when the job failed, was cancelled or timed out")
    preview: str | None = Field(None, description="data: URL of a JPEG preview (SSE events only)")
    attempts: int = Field(
        0,
        description="starts of the job's work: 0 while first queued, above 1 when a lost worker's job re-ran",
    )
    urls: JobUrls


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "invalid image, option or request body",
        404: "unknown style, model or job (or the job's result expired)",
        413: "image larger than the server's limits",
        429: "a queue is full; retry after the Retry-After header's seconds",
        503: "the server is starting (models loading) or shutting down",
        504: "the call's timeout_s passed before it finished",
    }.items()
}


_BINARY = {"schema": {"type": "string", "format": "binary"}}


def image_body(*fields: str, required: tuple[str, ...] = ("image",), raw: bool = True) -> dict[str, Any]:
    """OpenAPI for a raw image body and/or a multipart form with the given file fields."""
    props: dict[str, Any] = {f: {"type": "string", "format": "binary"} for f in fields}
    props["options"] = {"type": "string", "description": "JSON object of algorithm options"}
    content: dict[str, Any] = {"multipart/form-data": {"schema": {"type": "object", "properties": props}}}
    content["multipart/form-data"]["schema"]["required"] = list(required)
    if raw:
        content = {"image/jpeg": _BINARY, "image/png": _BINARY, "image/webp": _BINARY, **content}
    return {"requestBody": {"required": True, "content": content}}


def image_response(*types: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {t: {} for t in types}, "description": "the image"}}


def job_urls(job_id: str) -> JobUrls:
    base = f"{API_PREFIX}/jobs/{job_id}"
    return JobUrls(status=base, result=f"{base}/result", events=f"{base}/events")


def job_out(job: Job, event: JobEvent | None = None, with_preview: bool = False) -> JobOut:
    """A job's status as JSON, from ``event`` (a published snapshot) or the job's latest one."""
    event = event if event is not None else job.latest
    now = time.monotonic()
    started = job.started
    finished = job.finished if event.terminal else None
    timings = {"queued": round((started if started is not None else now) - job.created, 4)}
    if started is not None:
        timings["running"] = round((finished if finished is not None else now) - started, 4)
    timings["total"] = round((finished if finished is not None else now) - job.created, 4)
    progress = None
    if event.progress is not None:
        p = event.progress
        progress = ProgressOut(
            step=p.step,
            total=p.total,
            fraction=round(p.fraction, 4),
            stage=p.stage,
            losses={k: float(v) for k, v in p.losses.items()},
            elapsed_s=round(p.elapsed_s, 3),
            eta_s=None if p.eta_s is None else round(p.eta_s, 3),
        )
    result = None
    if event.state is JobState.SUCCEEDED and event.output is not None:
        out = event.output
        result = JobResultInfo(
            content_type=out.content_type, width=out.width, height=out.height, bytes=len(out.data)
        )
    error = None
    if event.error is not None:
        error = ErrorDetail(reason=reason_of(event.error), message=public_message(event.error), details=None)
    preview = None
    if with_preview and event.preview_jpeg:
        preview = "data:image/jpeg;base64," + base64.b64encode(event.preview_jpeg).decode()
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=event.state,
        progress=progress,
        timings=timings,
        result=result,
        error=error,
        preview=preview,
        attempts=job.attempts,
        urls=job_urls(job.id),
    )


async def job_event_stream(
    job: Job, keepalive_s: float, drain: asyncio.Event | None = None
) -> AsyncIterator[bytes]:
    """A job's statuses as Server-Sent Events: ``progress`` per published step, then one ``done``.

    A shared-queue job's stream ends early when ``drain`` is set (the replica got SIGTERM), with one
    ``shutting_down`` event instead of ``done``: the job's latest status plus ``reason`` and ``message``
    (the job goes on and is not cancelled; follow it with ``GET /v1/jobs/{id}`` on another replica), so
    the client learns why before the port closes. An EventSource reconnects by itself (``retry``).
    """
    yield b"retry: 2000\n\n"  # reconnect delay for EventSource clients
    seq = 0
    events = job.events()
    if job.shared and drain is not None:
        events = until_set(events, drain, lambda: handed_over(job.id))
    try:
        async for event in sse.with_keepalive(events, keepalive_s):
            if event is None:
                yield sse.KEEPALIVE
                continue
            seq += 1
            body = job_out(job, event, with_preview=True).model_dump(mode="json", exclude_none=True)
            yield sse.format_event(body, "done" if event.terminal else "progress", seq)
    except ShuttingDown as exc:
        body = job_out(job).model_dump(mode="json", exclude_none=True)
        body.update(reason=reason_of(exc), message=public_message(exc))
        yield sse.format_event(body, "shutting_down", seq + 1)
