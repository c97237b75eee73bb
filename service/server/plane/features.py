"""Embeddings, named galleries and adversarial jobs on the data plane (kept out of ``dataplane.py``).

``features_of(plane)`` gives the one ``FeaturePlane`` of a ``DataPlane``, so gRPC and REST share the same
galleries. It uses the plane's executors, readiness and fast-path admission:

* ``embed(images, normalize, backbone, deadline)``: vectors of one or several images (fast path: decode on
  the codec pool, forward pass on the fast pool, refused when its queue is full);
* ``gallery_add(name, images, names, backbone)`` / ``gallery_search(name, image, k)``: named galleries,
  at most ``max_galleries`` of them, each of at most ``max_gallery_items`` images; over either limit the
  call is refused (RESOURCE_EXHAUSTED / 429) and nothing is added;
* ``submit_attack(image, method, target, options, ...)``: FGSM, PGD or a fooling image (from noise: no
  input image needed, a target required; FGSM and PGD refuse a missing image) as a job (progress, cancel),
  like the other slow jobs: input decoded and options parsed before the job exists, then handed to
  ``plane.jobs`` as a ``JobWork`` (``attack_jobs.py``), so with the shared queue a worker runs it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from service.core.errors import InvalidArgument, NotFound, ResourceExhausted, quoted
from service.core.features.gallery import Gallery, Neighbour
from service.core.imageio import decode_image
from service.server.jobs.manager import Job
from service.server.jobs.work import queue_call
from service.server.plane.attack_jobs import attack_job
from service.server.plane.tracking import deadline_scope

if TYPE_CHECKING:
    from service.core.features.embed import Embeddings
    from service.server.plane.dataplane import DataPlane

GALLERY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class FeatureConfig:
    """From the settings (``Settings.max_galleries`` ...), read once at start."""

    max_galleries: int
    max_gallery_items: int
    max_embed_images: int  # images in one embed / gallery-add call


@dataclass
class _Named:
    gallery: Gallery
    backbone: str


class FeaturePlane:
    def __init__(self, plane: DataPlane, config: FeatureConfig) -> None:
        self.plane = plane
        self.config = config
        self._galleries: dict[str, _Named] = {}
        self._lock = threading.Lock()

    # --- embeddings -----------------------------------------------------------------------------------
    async def embed(
        self,
        images: Sequence[bytes],
        normalize: bool = False,
        backbone: str | None = None,
        deadline: float | None = None,
    ) -> tuple[str, Embeddings]:
        """(backbone name, embeddings) of ``images`` in order."""
        from service.core.features.embed import embed

        p = self.plane
        p._require_ready()
        if not images:
            raise InvalidArgument("Send at least one image to embed.")
        if len(images) > self.config.max_embed_images:
            raise InvalidArgument(
                f"{len(images)} images in one call; the limit is {self.config.max_embed_images}."
            )
        async with deadline_scope(deadline), p._fast_slot():
            decoded = await asyncio.gather(
                *(p._in(p.codec_executor, decode_image, data, p.config.limits) for data in images)
            )
            net = await p._in(p.fast_executor, _backbone, p, backbone)
            result = await p._in(p.fast_executor, lambda: embed(net, decoded, normalize=normalize, top=1))
        return net.name, result

    # --- galleries ------------------------------------------------------------------------------------
    def galleries(self) -> dict[str, tuple[str, int]]:
        with self._lock:
            return {name: (g.backbone, len(g.gallery)) for name, g in sorted(self._galleries.items())}

    def _gallery(self, name: str, backbone: str, dimension: int, create: bool) -> Gallery:
        check_gallery_name(name)
        with self._lock:
            named = self._galleries.get(name)
            if named is None:
                if not create:
                    raise NotFound(f"No gallery named {quoted(name)}.")
                if len(self._galleries) >= self.config.max_galleries:
                    raise ResourceExhausted(
                        f"The server holds at most {self.config.max_galleries} galleries, and has them all.",
                        retry_after_s=60.0,
                    )
                named = _Named(Gallery(dimension, self.config.max_gallery_items), backbone)
                self._galleries[name] = named
            if named.backbone != backbone:
                raise InvalidArgument(
                    f"Gallery {quoted(name)} holds {named.backbone} vectors, not {backbone}."
                )
            return named.gallery

    async def gallery_add(
        self,
        name: str,
        images: Sequence[bytes],
        names: Sequence[str] | None = None,
        backbone: str | None = None,
        deadline: float | None = None,
    ) -> tuple[str, int, int]:
        """Embed and add ``images``; returns (backbone, images added, gallery size)."""
        if names is not None and len(names) != len(images):
            raise InvalidArgument(f"Got {len(names)} names for {len(images)} images.")
        check_gallery_name(name)  # a bad name fails before the work
        net, result = await self.embed(images, normalize=True, backbone=backbone, deadline=deadline)
        gallery = self._gallery(name, net, result.dimension, create=True)
        start = len(gallery)
        labels = list(names) if names is not None else [f"{start + i}" for i in range(len(images))]
        size = gallery.add(labels, result.vectors)
        return net, len(images), size

    async def gallery_search(
        self, name: str, image: bytes, k: int = 8, deadline: float | None = None
    ) -> tuple[str, list[Neighbour]]:
        check_gallery_name(name)
        with self._lock:
            named = self._galleries.get(name)
        if named is None:
            raise NotFound(  # said for both transports: the same plane answers REST and gRPC
                f"No gallery named {quoted(name)}; add images to it first "
                f"(POST /v1/galleries/{name}, or AddToGallery)."
            )
        if not 1 <= k <= 1000:
            raise InvalidArgument(f"k must be between 1 and 1000, got {k}.")
        net, result = await self.embed([image], normalize=True, backbone=named.backbone, deadline=deadline)
        p = self.plane
        hits = await p._in(p.fast_executor, named.gallery.search, result.vectors, k)
        return net, hits[0]

    # --- adversarial jobs -----------------------------------------------------------------------------
    async def submit_attack(
        self,
        image: bytes | None,
        method: str = "pgd",
        target: int | str | None = None,
        options: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        owner: str | None = None,
    ) -> Job:
        p = self.plane
        p._require_ready()
        cfg = p.config.slow()
        work = await p._in(p.codec_executor, attack_job, cfg, image, method, target, options)
        return await queue_call(p.jobs, p.jobs.submit_work, work, deadline, owner)


def check_gallery_name(name: str) -> None:
    if not isinstance(name, str) or not GALLERY_NAME.match(name):
        raise InvalidArgument(
            f"Gallery name {quoted(name)} must be 1-64 letters, digits, '_', '.' or '-' (not first)."
        )


def _backbone(plane: DataPlane, name: str | None) -> Any:
    from service.core.backbones import get_backbone

    cfg = plane.config
    return get_backbone(name or cfg.default_backbone, cfg.device, cfg.backbone_weights)


_planes: weakref.WeakKeyDictionary[DataPlane, FeaturePlane] = weakref.WeakKeyDictionary()
_planes_lock = threading.Lock()


def features_of(plane: DataPlane) -> FeaturePlane:
    """The ``FeaturePlane`` of ``plane`` (made on first use; one per data plane)."""
    with _planes_lock:
        fp = _planes.get(plane)
        if fp is None:
            fp = FeaturePlane(plane, plane.config.features)
            _planes[plane] = fp
        return fp


def vectors_json(vectors: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in vectors]
