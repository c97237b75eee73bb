"""Client calls for embeddings, galleries and adversarial jobs: a mixin of ``service.client.AtelierClient``.

    with AtelierClient("localhost:50051") as client:
        vectors = client.embed(["a.jpg", "b.jpg"], normalize=True).vectors      # (2, 1280) float32
        client.add_to_gallery("photos", {"cat": "cat.jpg", "dog": "dog.jpg"})
        print([(n.id, n.distance) for n in client.search_gallery("photos", "query.jpg", k=2)])
        final = client.attack("cat.jpg", target="ipod", eps=4, steps=20).result()
        final.save("adv.png"); print(final.attack.success, final.attack.after[0].label)

Kept apart from client.py for size; the image and options helpers both files use live here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import struct_pb2

from service.api.v1 import atelier_pb2 as pb

if TYPE_CHECKING:
    from service.api.v1 import atelier_pb2_grpc as pb_grpc
    from service.client import RenderStream

ImageInput = bytes | str | Path


def image_bytes(image: ImageInput) -> bytes:
    """Bytes as they are; a ``str`` or ``Path`` is a file to read."""
    return image if isinstance(image, bytes) else Path(image).read_bytes()


def options_struct(values: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    if values is None:
        return None
    s = struct_pb2.Struct()
    s.update(dict(values))
    return s


@dataclass(frozen=True)
class Embedded:
    """``Embed``'s answer: ``vectors`` (N, dimension) float32, one row and one top-1 class per image."""

    backbone: str
    tap: str
    dimension: int
    normalized: bool
    vectors: np.ndarray
    predictions: list[pb.Prediction] = field(default_factory=list)


@dataclass(frozen=True)
class AttackOutcome:
    """What an ``Attack`` found, beside the final image (``RenderUpdate.image``, a PNG)."""

    method: str
    target: int | None
    success: bool
    steps: int
    linf: int
    perturbation: bytes | None  # PNG, 128 + delta stretched; None for fooling images
    before: list[pb.Prediction]
    after: list[pb.Prediction]


def attack_outcome(message: pb.AttackOutcome) -> AttackOutcome:
    return AttackOutcome(
        method=message.method,
        target=message.target if message.HasField("target") else None,
        success=message.success,
        steps=message.steps,
        linf=message.linf,
        perturbation=message.perturbation or None,
        before=list(message.before),
        after=list(message.after),
    )


class FeatureCalls:
    """Embed, galleries and Attack; ``AtelierClient`` supplies the channel, metadata and error mapping."""

    if TYPE_CHECKING:  # provided by AtelierClient
        stub: pb_grpc.AtelierStub
        metadata: tuple[tuple[str, str], ...]

        def _unary(self, method: Any, request: Any, timeout: float | None) -> Any: ...

        def _render_stream(self, call: Any) -> RenderStream: ...

    def embed(
        self,
        images: ImageInput | Sequence[ImageInput],
        normalize: bool = False,
        backbone: str = "",
        timeout: float | None = None,
    ) -> Embedded:
        """Feature vectors of one image or several (in order), optionally scaled to unit L2 norm."""
        many = [images] if isinstance(images, bytes | str | Path) else list(images)
        req = pb.EmbedRequest(images=[image_bytes(i) for i in many], normalize=normalize, backbone=backbone)
        r = self._unary(self.stub.Embed, req, timeout)
        vectors = np.array([list(e.vector) for e in r.embeddings], dtype=np.float32).reshape(-1, r.dimension)
        return Embedded(
            r.backbone, r.tap, r.dimension, r.normalized, vectors, [e.prediction for e in r.embeddings]
        )

    def list_galleries(self, timeout: float | None = None) -> list[pb.GalleryInfo]:
        return list(self._unary(self.stub.ListGalleries, pb.ListGalleriesRequest(), timeout).galleries)

    def add_to_gallery(
        self,
        gallery: str,
        images: Mapping[str, ImageInput] | Sequence[ImageInput],
        backbone: str = "",
        timeout: float | None = None,
    ) -> pb.AddToGalleryResponse:
        """Add images to ``gallery`` (made on first use): a mapping id -> image, or a list (numbered)."""
        if isinstance(images, Mapping):
            items = [pb.GalleryImage(id=k, image=image_bytes(v)) for k, v in images.items()]
        else:
            items = [pb.GalleryImage(image=image_bytes(v)) for v in images]
        req = pb.AddToGalleryRequest(gallery=gallery, images=items, backbone=backbone)
        return self._unary(self.stub.AddToGallery, req, timeout)

    def search_gallery(
        self, gallery: str, image: ImageInput, k: int = 8, timeout: float | None = None
    ) -> list[pb.Neighbour]:
        """The ``k`` gallery items nearest to ``image``, nearest first (``id``, cosine ``distance``)."""
        req = pb.SearchGalleryRequest(gallery=gallery, image=image_bytes(image), k=k)
        return list(self._unary(self.stub.SearchGallery, req, timeout).neighbours)

    def attack(
        self,
        image: ImageInput | None,
        target: int | str | None = None,
        method: str = "pgd",
        eps: float | None = None,
        steps: int | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> RenderStream:
        """Start an attack (``pgd``, ``fgsm``; ``fooling`` takes no image and needs a target); iterate for
        progress; the last update holds the image and ``attack`` (success, top-5 before and after)."""
        req = pb.AttackRequest(
            image=image_bytes(image) if image is not None else b"",
            method=method,
            eps=eps,
            steps=steps,
            options=options_struct(options),
        )
        if isinstance(target, int):
            req.target_index = target
        elif isinstance(target, str):
            req.target_label = target
        return self._render_stream(self.stub.Attack(req, timeout=timeout, metadata=self.metadata))
