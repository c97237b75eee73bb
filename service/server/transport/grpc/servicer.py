"""The gRPC transport: a thin ``atelier.v1.Atelier`` servicer over the ``DataPlane``.

Each method converts the request to plain values, awaits the data plane, and converts the result back.
Errors go through ``errormap`` (``context.abort`` with the mapped code and the error's message; a full
queue adds the ``retry-after-s`` trailing metadata). The streaming renders submit a job and stream its
events (``jobs.py``, with ``WatchJob`` and ``CancelJob``); if the client cancels or its deadline passes,
the job is cancelled and its worker freed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.core.arbitrary.engine import MODEL_NAME
from service.core.errors import InvalidArgument, ResourceExhausted
from service.server.auth.authenticator import Authenticator
from service.server.errors import RETRY_AFTER_KEY, public_message, status_for
from service.server.plane.dataplane import DataPlane, RequestScope
from service.server.transport.grpc.convert import (
    blend_of,
    deadline_of,
    image_format,
    predictions_of,
    quality_of,
    region_of,
    struct_values,
)
from service.server.transport.grpc.features import FeatureRpcs
from service.server.transport.grpc.jobs import JobRpcs

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Atelier"].full_name  # "atelier.v1.Atelier"

SALIENCY_OUTPUTS = {
    pb.SALIENCY_OUTPUT_UNSPECIFIED: "overlay",
    pb.SALIENCY_OUTPUT_OVERLAY: "overlay",
    pb.SALIENCY_OUTPUT_HEATMAP: "heatmap",
    pb.SALIENCY_OUTPUT_FLOAT32: "float32",
}


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    """The call's ``authorization`` metadata (``Bearer <key>``); gRPC lower-cases metadata keys."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


# Status details travel in a trailer, and clients refuse trailers above their metadata limit (8 KiB by
# default), reporting RESOURCE_EXHAUSTED instead of the real error; every message is cut well below that.
MAX_DETAILS_CHARS = 2000


def _fit(message: str) -> str:
    return message if len(message) <= MAX_DETAILS_CHARS else message[: MAX_DETAILS_CHARS - 3] + "..."


@asynccontextmanager
async def rpc_scope(
    plane: DataPlane, auth: Authenticator, context: grpc.aio.ServicerContext, method: str, model: str = ""
) -> AsyncIterator[RequestScope]:
    """Time the call and turn an error into ``context.abort`` with the mapped status (every servicer's
    ``_rpc``: ``atelier.v1.Atelier`` here, ``inference.GRPCInferenceService`` in ``inference.py``).

    ``abort`` raises, so an error never falls through to the code after the ``async with`` block.
    Cancellation (client gone, deadline) is a ``BaseException`` and passes through untouched.
    The API key is checked here, inside the tracking (not in an interceptor), so a refused call is
    counted and mapped like any other error and its key name reaches the job calls as ``scope.owner``.
    Health and reflection are other services: they never ask for a key.
    """
    try:
        async with plane.track("grpc", method, model) as scope:
            scope.key = await auth.check_async(_authorization(context))
            yield scope
    except Exception as exc:
        status = status_for(exc)
        if isinstance(exc, ResourceExhausted):
            context.set_trailing_metadata(((RETRY_AFTER_KEY, f"{exc.retry_after_s:g}"),))
        await context.abort(status.grpc, _fit(public_message(exc)))


class AtelierServicer(JobRpcs, FeatureRpcs, pb_grpc.AtelierServicer):
    def __init__(self, plane: DataPlane, auth: Authenticator | None = None) -> None:
        self.plane = plane
        self.auth = auth if auth is not None else Authenticator.open()

    def _rpc(
        self, context: grpc.aio.ServicerContext, method: str, model: str = ""
    ) -> AbstractAsyncContextManager[RequestScope]:
        """``rpc_scope`` for this servicer's plane and keys."""
        return rpc_scope(self.plane, self.auth, context, method, model)

    async def Stylize(
        self, request: pb.StylizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.StylizeResponse:
        painting = request.WhichOneof("style_source") == "style_image"
        label = MODEL_NAME if painting else (request.model or request.style)
        async with self._rpc(context, "Stylize", label) as scope:
            strength = request.strength if request.HasField("strength") else 1.0
            common: dict[str, Any] = dict(
                strength=strength,
                preserve_color=request.preserve_color,
                max_side=request.max_side or None,
                fmt=image_format(request.format),
                quality=quality_of(request.quality),
                deadline=deadline_of(context),
            )
            region = region_of(request)
            if painting:  # any painting: arbitrary style (plane/arbitrary.py)
                if request.blend or region is not None:
                    raise InvalidArgument("A style_image call takes no blend or mask.")
                res = await self.plane.arbitrary.stylize(
                    request.image, request.style_image, style_size=request.style_size or None, **common
                )
            elif request.style_size:
                raise InvalidArgument("style_size applies only with a style_image.")
            else:
                res = await self.plane.stylize(
                    request.image,
                    request.style if request.HasField("style") else None,
                    blend=blend_of(request.blend),
                    model=request.model or None,
                    region=region,
                    **common,
                )
            scope.model = res.model
        return pb.StylizeResponse(
            image=res.image,
            content_type=res.content_type,
            model=res.model,
            version=res.version,
            provider=res.provider,
            timings_ms=res.timings,
            width=res.width,
            height=res.height,
            batch_size=res.batch_size,
            style_cached=res.style_cached,
            style=res.style,
            background=res.background,
        )

    async def ListStyles(
        self, request: pb.ListStylesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListStylesResponse:
        async with self._rpc(context, "ListStyles"):
            styles = [
                pb.StyleInfo(
                    name=s.name,
                    style=s.style,
                    arch=s.arch,
                    version=s.version,
                    title=s.title,
                    artist=s.artist,
                    year=s.year,
                    licence=s.licence,
                    provider=s.provider,
                    precision=s.precision,
                    net=s.net,
                )
                for s in self.plane.list_styles()
            ]
        return pb.ListStylesResponse(styles=styles)

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        backbone = request.backbone or self.plane.config.default_backbone
        async with self._rpc(context, "Classify", backbone):
            preds = await self.plane.classify(
                request.image, top_k=request.top_k or 5, backbone=backbone, deadline=deadline_of(context)
            )
        return pb.ClassifyResponse(predictions=predictions_of(preds), backbone=backbone)

    async def Saliency(
        self, request: pb.SaliencyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SaliencyResponse:
        backbone = request.backbone or self.plane.config.default_backbone
        which = request.WhichOneof("target")
        target: int | str | None = getattr(request, which) if which else None
        async with self._rpc(context, "Saliency", backbone) as scope:
            out = await self.plane.saliency(
                request.image,
                request.method,
                target=target,
                output=SALIENCY_OUTPUTS.get(request.output, "overlay"),
                params=struct_values(request.params) if request.HasField("params") else None,
                top_k=request.top_k or 5,
                backbone=backbone,
                deadline=deadline_of(context),
                owner=scope.owner,
            )
        return pb.SaliencyResponse(
            map=out.data,
            content_type=out.content_type,
            width=out.width,
            height=out.height,
            target=out.target,
            predictions=predictions_of(out.predictions),
            method=out.method,
        )

    async def Gatys(
        self, request: pb.GatysRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RenderEvent]:
        backbone = request.backbone or self.plane.config.default_backbone
        async with self._rpc(context, "Gatys", backbone) as scope:
            job = await self.plane.submit_gatys(
                request.content,
                list(request.styles),
                struct_values(request.options) if request.HasField("options") else None,
                fmt=image_format(request.format),
                quality=quality_of(request.quality),
                backbone=backbone,
                deadline=deadline_of(context),
                owner=scope.owner,
            )
            async for event in self._stream(job):
                yield event

    async def DeepDream(
        self, request: pb.DeepDreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RenderEvent]:
        backbone = request.backbone or self.plane.config.default_backbone
        async with self._rpc(context, "DeepDream", backbone) as scope:
            job = await self.plane.submit_deepdream(
                request.image,
                struct_values(request.options) if request.HasField("options") else None,
                fmt=image_format(request.format),
                quality=quality_of(request.quality),
                backbone=backbone,
                guide=request.guide or None,
                deadline=deadline_of(context),
                owner=scope.owner,
            )
            async for event in self._stream(job):
                yield event


class Health:
    """``grpc.health.v1.Health``: NOT_SERVING until the plane is ready, NOT_SERVING again on shutdown."""

    SERVICES = ("", SERVICE_NAME, "inference.GRPCInferenceService")  # the last: the v2 protocol's

    def __init__(self) -> None:
        self.servicer = grpc_health.aio.HealthServicer()  # type: ignore[attr-defined]

    async def set(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.SERVICES:
            await self.servicer.set(name, status)
