"""The gRPC side of embeddings, galleries and adversarial jobs: ``Embed``, ``ListGalleries``,
``AddToGallery``, ``SearchGallery`` and ``Attack`` (``service.server.plane.features``).

A mixin of ``AtelierServicer`` (kept out of servicer.py for size): every method runs inside the servicer's
``_rpc`` (API key, metrics, the one error table) like the other RPCs, and calls the same ``FeaturePlane`` as
REST, so a gallery filled over one transport is searched over the other. ``Attack`` streams the job through
the servicer's ``_stream`` (cancel on client exit), which adds the outcome to the final ``RenderResult``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import grpc

from service.api.v1 import atelier_pb2 as pb
from service.core.errors import InvalidArgument
from service.server.plane.attack_jobs import ATTACK_MODEL  # every attack's model (the metrics' label)
from service.server.plane.features import features_of
from service.server.transport.grpc.convert import deadline_of, predictions_of, struct_values

if TYPE_CHECKING:
    from service.server.jobs.manager import Job
    from service.server.plane.dataplane import DataPlane, RequestScope

DEFAULT_K = 8  # neighbours when SearchGallery's k is 0, as REST's default


def _target(request: pb.AttackRequest) -> int | str | None:
    which = request.WhichOneof("target")
    return getattr(request, which) if which else None


def attack_options(request: pb.AttackRequest) -> dict[str, Any] | None:
    """The ``options`` Struct with the typed ``eps`` and ``steps`` fields merged in (once each)."""
    options = struct_values(request.options) if request.HasField("options") else {}
    for name in ("eps", "steps"):
        if request.HasField(name):
            if name in options:
                raise InvalidArgument(f"{name} is set both as a field and in options; send it once.")
            options[name] = getattr(request, name)
    return options or None


def attack_outcome(extra: Mapping[str, Any]) -> pb.AttackOutcome:
    """The ``AttackOutcome`` of an attack job's ``JobOutput.extra`` (in-process or read from Redis)."""
    target = extra.get("target")
    return pb.AttackOutcome(
        method=str(extra.get("method", "")),
        target=int(target) if target is not None else None,
        success=bool(extra.get("success", False)),
        steps=int(extra.get("steps", 0)),
        linf=int(extra.get("linf", 0)),
        perturbation=extra.get("perturbation") or b"",
        before=_predictions(extra.get("before") or ()),
        after=_predictions(extra.get("after") or ()),
    )


def _predictions(rows: Any) -> list[pb.Prediction]:
    """An attack's top-k as its job stores them (``attack_jobs.predictions_json``: plain mappings)."""
    return [pb.Prediction(index=int(r["index"]), label=str(r["label"]), probability=float(r["probability"]))
            for r in rows]  # fmt: skip


class FeatureRpcs:
    """Embed, the gallery RPCs and Attack; mixed into ``AtelierServicer``, which supplies the rest."""

    if TYPE_CHECKING:  # provided by AtelierServicer
        plane: DataPlane

        def _rpc(
            self, context: grpc.aio.ServicerContext, method: str, model: str = ""
        ) -> AbstractAsyncContextManager[RequestScope]: ...

        def _stream(self, job: Job) -> AsyncIterator[pb.RenderEvent]: ...

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        backbone = request.backbone or self.plane.config.default_backbone
        async with self._rpc(context, "Embed", backbone):
            net, result = await features_of(self.plane).embed(
                list(request.images), request.normalize, backbone, deadline_of(context)
            )
        preds = result.predictions or [[] for _ in range(len(result.vectors))]
        rows = [
            pb.Embedding(vector=vector.tolist(), prediction=predictions_of(p[:1])[0] if p else None)
            for vector, p in zip(result.vectors, preds, strict=True)
        ]
        return pb.EmbedResponse(
            backbone=net,
            tap=result.tap,
            dimension=result.dimension,
            normalized=result.normalized,
            embeddings=rows,
        )

    async def ListGalleries(
        self, request: pb.ListGalleriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListGalleriesResponse:
        async with self._rpc(context, "ListGalleries"):
            rows = [
                pb.GalleryInfo(name=name, backbone=backbone, size=size)
                for name, (backbone, size) in features_of(self.plane).galleries().items()
            ]
        return pb.ListGalleriesResponse(galleries=rows)

    async def AddToGallery(
        self, request: pb.AddToGalleryRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddToGalleryResponse:
        backbone = request.backbone or self.plane.config.default_backbone
        async with self._rpc(context, "AddToGallery", backbone):
            images = [item.image for item in request.images]
            # All ids empty: the gallery numbers the images (as REST without 'names'); otherwise every id
            # counts, and an empty one is refused by the gallery rather than silently numbered.
            ids = [item.id for item in request.images] if any(i.id for i in request.images) else None
            net, added, size = await features_of(self.plane).gallery_add(
                request.gallery, images, ids, backbone, deadline_of(context)
            )
        return pb.AddToGalleryResponse(gallery=request.gallery, backbone=net, added=added, size=size)

    async def SearchGallery(
        self, request: pb.SearchGalleryRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchGalleryResponse:
        async with self._rpc(context, "SearchGallery") as scope:
            net, hits = await features_of(self.plane).gallery_search(
                request.gallery, request.image, request.k or DEFAULT_K, deadline_of(context)
            )
            scope.model = net  # the gallery's backbone, known once the gallery is found
        rows = [pb.Neighbour(id=h.name, distance=h.distance, index=h.index) for h in hits]
        return pb.SearchGalleryResponse(gallery=request.gallery, backbone=net, neighbours=rows)

    async def Attack(
        self, request: pb.AttackRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RenderEvent]:
        async with self._rpc(context, "Attack", ATTACK_MODEL) as scope:
            job = await features_of(self.plane).submit_attack(
                request.image,
                request.method or "pgd",
                _target(request),
                attack_options(request),
                deadline=deadline_of(context),
                owner=scope.owner,
            )
            async for event in self._stream(job):  # its result event carries the outcome (jobs.py)
                yield event
