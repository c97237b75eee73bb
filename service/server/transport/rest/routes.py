"""The REST transport: ``/v1`` routes over the ``DataPlane``, in the same process as gRPC.

Each route reads the request (``uploads``), awaits the data plane and writes the answer. The route class
(``errors.route_class``) tracks every call and turns every error (the data plane's typed errors, FastAPI's
validation errors, bugs) into JSON with the same status table as gRPC (``service.server.errors``), once;
routes only name the model (``scope.model``) when they know it. Metric method labels are the gRPC method
names, so one dashboard panel shows both transports.

| route | answer |
|---|---|
| ``POST /v1/stylize?style=...`` | the stylised image (``blend=``, a ``mask`` part or ``mask=saliency``, or |
|  | a ``style_image`` part: any painting; ``routes_stylize.py``) |
| ``GET /v1/styles`` | the loaded styles |
| ``POST /v1/classify`` | top-k ImageNet classes |
| ``POST /v1/saliency?method=...&output=overlay|heatmap|float32|npy|json`` | the map |
| ``POST /v1/jobs/gatys``, ``POST /v1/jobs/deepdream`` | 202 and the job's status and URLs |
| ``GET /v1/jobs/{id}``, ``DELETE /v1/jobs/{id}`` | status; DELETE cancels |
| ``GET /v1/jobs/{id}/result`` | the finished image |
| ``GET /v1/jobs/{id}/events`` | Server-Sent Events: ``progress`` ... then one ``done`` (``shutting_down``: |
|  | this replica drains, the shared-queue job goes on; follow it elsewhere) |

Every POST takes an optional ``timeout_s``: the call's deadline (504 when it passes), or a job's run cap.
Job lookups go through ``queue_call``: with the shared queue they are Redis round trips, made off the
event loop so a stalled Redis holds up only the calls that need it.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from service.core.errors import InvalidArgument, InvalidImage
from service.server.auth.authenticator import Authenticator
from service.server.auth.rest import key_dependency
from service.server.jobs.manager import Job
from service.server.jobs.work import queue_call
from service.server.plane.dataplane import DataPlane
from service.server.transport.rest import sse
from service.server.transport.rest.errors import CallScope, install_error_handlers, route_class
from service.server.transport.rest.routes_stylize import add_stylize_route
from service.server.transport.rest.schemas import (
    API_PREFIX,
    ERROR_RESPONSES,
    ClassifyOut,
    JobOut,
    PredictionOut,
    StyleOut,
    StylesOut,
    image_body,
    image_response,
    job_event_stream,
    job_out,
)
from service.server.transport.rest.uploads import (
    MULTIPART,
    Upload,
    content_type_of,
    form_value,
    parse_json_object,
    parse_target,
    read_upload,
)

__all__ = ["build_router", "install_error_handlers"]

RESERVED_FIELDS = ("options", "format", "quality", "backbone")

Format = Annotated[str, Query(alias="format", description="png, jpeg or webp")]
Quality = Annotated[int, Query(description="JPEG/WebP quality, 1-100")]
OptionsQuery = Annotated[str | None, Query(alias="options", description="algorithm options as JSON")]
Timeout = Annotated[
    float | None,
    Query(gt=0, description="seconds until the server gives up (504); for a job, a cap on its run"),
]
Backbone = Annotated[str | None, Query(description="efficientnet_lite0 (default), vgg16 or vgg19")]


# Route function -> metric method label (the gRPC method names, so both transports share panels).
METHOD_NAMES = {
    "list_styles": "ListStyles",
    "stylize": "Stylize",
    "classify": "Classify",
    "saliency": "Saliency",
    "submit_gatys": "Gatys",
    "submit_deepdream": "DeepDream",
    "get_job": "GetJob",
    "cancel_job": "CancelJob",
    "job_result": "GetJobResult",
    "job_events": "JobEvents",
}


def build_router(plane: DataPlane, keepalive_s: float = 15.0, auth: Authenticator | None = None) -> APIRouter:
    """The ``/v1`` routes over ``plane``. ``keepalive_s``: SSE comment interval on a quiet stream.
    ``auth`` with keys: every route needs one (``service.server.auth.rest``); jobs are the key's own."""
    # Only with keys: an open server's routes and OpenAPI document stay what they were without auth.
    keyed = [Depends(key_dependency(auth))] if auth is not None and auth.enabled else []
    router = APIRouter(
        prefix=API_PREFIX,
        responses=ERROR_RESPONSES,
        route_class=route_class(plane.metrics, METHOD_NAMES),
        dependencies=keyed,
    )
    max_bytes = plane.config.limits.max_bytes

    @router.get("/styles", response_model=StylesOut, summary="List the loaded styles")
    async def list_styles() -> StylesOut:
        styles = [StyleOut(**{k: getattr(s, k) for k in StyleOut.model_fields}) for s in plane.list_styles()]
        return StylesOut(styles=styles)

    add_stylize_route(router, plane, max_bytes)  # routes_stylize.py: styles, blends, regions, paintings

    @router.post(
        "/classify",
        response_model=ClassifyOut,
        summary="Top-k ImageNet classes",
        openapi_extra=image_body("image"),
    )
    async def classify(
        request: Request,
        scope: CallScope,
        top_k: Annotated[int, Query(description="how many classes, 1-1000")] = 5,
        backbone: Backbone = None,
        timeout_s: Timeout = None,
    ) -> ClassifyOut:
        scope.model = net = backbone or plane.config.default_backbone
        image = (await read_upload(request, max_bytes)).one("image")
        preds = await plane.classify(image, top_k=top_k, backbone=net, deadline=_deadline(timeout_s))
        out = [PredictionOut(index=p.index, label=p.label, probability=p.probability) for p in preds]
        return ClassifyOut(backbone=net, predictions=out)

    @router.post(
        "/saliency",
        summary="A saliency map: which pixels the classifier's decision rests on",
        response_class=Response,
        openapi_extra=image_body("image"),
        responses=image_response("image/png", "application/x-npy", "application/json"),
    )
    async def saliency(
        request: Request,
        scope: CallScope,
        method: Annotated[
            str, Query(description="gradcam, integrated_gradients, smoothgrad, rise, ...")
        ] = "gradcam",
        target: Annotated[
            str | None, Query(description="class index or label; default: the top class")
        ] = None,
        output: Annotated[str, Query(description="overlay, heatmap, npy, json or float32")] = "overlay",
        params: Annotated[
            str | None, Query(description='method parameters as JSON, e.g. {"samples": 16}')
        ] = None,
        top_k: Annotated[int, Query(description="predictions reported in X-Atelier-Predictions")] = 5,
        backbone: Backbone = None,
        timeout_s: Timeout = None,
    ) -> Response:
        scope.model = net = backbone or plane.config.default_backbone
        image = (await read_upload(request, max_bytes)).one("image")
        extra = parse_json_object(params, "params")
        out = await plane.saliency(
            image,
            method,
            parse_target(target),
            output,
            extra,
            top_k=top_k,
            backbone=net,
            deadline=_deadline(timeout_s),
            owner=scope.owner,
        )
        preds = [
            {"index": p.index, "label": p.label, "probability": round(p.probability, 5)}
            for p in out.predictions
        ]
        headers = {
            "X-Atelier-Method": out.method,
            "X-Atelier-Target": str(out.target),
            "X-Atelier-Map-Size": f"{out.width}x{out.height}",
            "X-Atelier-Predictions": json.dumps(preds, separators=(",", ":")),  # ASCII: json escapes the rest
        }
        return Response(out.data, media_type=out.content_type, headers=headers)

    async def _job_request(
        request: Request, max_images: int, options_q: str | None, fmt: str, quality: int, backbone: str | None
    ) -> tuple[Upload, dict[str, Any], str, int, str]:
        """Images, options (query ``options`` < form ``options`` < single form fields) and output settings."""
        upload = await read_upload(request, max_bytes, max_images=max_images)
        options = parse_json_object(options_q, "options")
        options.update(parse_json_object(upload.fields.get("options"), "options"))
        options.update({k: form_value(v) for k, v in upload.fields.items() if k not in RESERVED_FIELDS})
        fmt = upload.fields.get("format", fmt)
        quality_text = upload.fields.get("quality")
        if quality_text is not None:
            value = form_value(quality_text)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidArgument(f"quality must be an integer between 1 and 100, got {quality_text!r}.")
            quality = value
        net = upload.fields.get("backbone") or backbone or plane.config.default_backbone
        return upload, options, fmt, quality, net

    def _accepted(job: Job) -> JSONResponse:
        body = job_out(job).model_dump(mode="json")
        return JSONResponse(body, status_code=202, headers={"Location": body["urls"]["status"]})

    job_responses: dict[int | str, dict[str, Any]] = {202: {"model": JobOut, "description": "job accepted"}}

    @router.post(
        "/jobs/gatys",
        status_code=202,
        summary="Start a Gatys et al. style transfer job",
        response_model=JobOut,
        responses=job_responses,
        openapi_extra=image_body("content", "style", required=("content", "style"), raw=False),
    )
    async def submit_gatys(
        request: Request,
        scope: CallScope,
        options: OptionsQuery = None,
        fmt: Format = "png",
        quality: Quality = 90,
        backbone: Backbone = None,
        timeout_s: Timeout = None,
    ) -> JSONResponse:
        if content_type_of(request) != MULTIPART:
            raise InvalidImage(
                "A Gatys job takes multipart/form-data with a 'content' file and one or more 'style' files "
                "(curl -F content=@photo.jpg -F style=@painting.jpg ...)."
            )
        upload, opts, fmt, quality, net = await _job_request(
            request, 1 + plane.config.admission.max_styles, options, fmt, quality, backbone
        )
        scope.model = net
        styles = upload.files.get("style", [])
        if not styles:
            upload.one("style")  # raises: explains which fields were sent
        job = await plane.submit_gatys(
            upload.one("content"), styles, opts, fmt, quality, net, _deadline(timeout_s), scope.owner
        )
        return _accepted(job)

    @router.post(
        "/jobs/deepdream",
        status_code=202,
        summary="Start a DeepDream job",
        response_model=JobOut,
        responses=job_responses,
        openapi_extra=image_body("image", "guide"),
    )
    async def submit_deepdream(
        request: Request,
        scope: CallScope,
        options: OptionsQuery = None,
        fmt: Format = "png",
        quality: Quality = 90,
        backbone: Backbone = None,
        timeout_s: Timeout = None,
    ) -> JSONResponse:
        upload, opts, fmt, quality, net = await _job_request(request, 2, options, fmt, quality, backbone)
        scope.model = net
        guide = upload.optional("guide")
        job = await plane.submit_deepdream(
            upload.one("image"), opts, fmt, quality, net, guide, _deadline(timeout_s), scope.owner
        )
        return _accepted(job)

    @router.get("/jobs/{job_id}", response_model=JobOut, summary="A job's state, progress and timings")
    async def get_job(job_id: str, scope: CallScope) -> JobOut:
        return job_out(await queue_call(plane.jobs, plane.jobs.get, job_id, scope.owner))

    @router.delete("/jobs/{job_id}", response_model=JobOut, summary="Cancel a job")
    async def cancel_job(job_id: str, scope: CallScope) -> JobOut:
        """A queued job is cancelled at once; a running one stops within one iteration."""
        jobs = plane.jobs
        return job_out(
            await queue_call(jobs, jobs.cancel, job_id, "cancelled by the client (DELETE)", scope.owner)
        )

    @router.get(
        "/jobs/{job_id}/result",
        summary="The finished job's image",
        response_class=Response,
        responses=image_response("image/png", "image/jpeg", "image/webp"),
    )
    async def job_result(job_id: str, scope: CallScope) -> Response:
        """503 with Retry-After while the job runs; the job's own error if it failed or was cancelled."""
        job = await queue_call(plane.jobs, plane.jobs.get, job_id, scope.owner)
        out = job.output()
        ext = out.content_type.rsplit("/", 1)[-1]
        headers = {"Content-Disposition": f'inline; filename="{job.kind}-{job.id}.{ext}"'}
        return Response(out.data, media_type=out.content_type, headers=headers)

    @router.get(
        "/jobs/{job_id}/events",
        summary="Progress as Server-Sent Events",
        response_class=StreamingResponse,
        responses={200: {"content": {sse.MEDIA_TYPE: {}}, "description": "progress events, then done"}},
    )
    async def job_events(job_id: str, scope: CallScope) -> StreamingResponse:
        """``event: progress`` (JSON job status, with a ``preview`` data URL when the job makes previews)
        on each step, ``event: done`` once with the final status; ``:`` comments keep a quiet stream open.
        A shared-queue job's stream on a draining replica ends with ``event: shutting_down`` instead."""
        job = await queue_call(plane.jobs, plane.jobs.get, job_id, scope.owner)
        return StreamingResponse(
            job_event_stream(job, keepalive_s, plane.drain_started),
            media_type=sse.MEDIA_TYPE,
            headers=sse.HEADERS,
        )

    return router


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s
