"""Image embeddings: the backbone's pooled feature vector, one float32 row per image.

The vector is the representation the classifier's last linear layer reads, so images the network sees as
alike lie close together (the "image retrieval by nearest neighbours of the last hidden layer" experiment of
Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional Neural Networks",
Section 6.1). Taps, at the classifier's own preprocessing (short side to size / 0.875, centre crop):

======================  ==========  ================================================================
backbone                dimension   tap
======================  ==========  ================================================================
``efficientnet_lite0``  1280        ``pool``: global average pool of the 1280-channel head (ReLU6)
``vgg16`` / ``vgg19``   4096        ``relu7``: the second fully connected layer after its ReLU
======================  ==========  ================================================================

Images are embedded in fixed-size chunks of ``batch_size``; every image is cropped to the same square, so
a vector does not depend on what else is in the batch beyond float rounding (the test checks 1e-5).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from service.core.backbones.base import Backbone
from service.core.classify import Prediction, center_crop_resize, top_k
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback, ProgressClock
from service.core.tensors import images_to_batch

# backbone name -> (tap, dimension); a backbone not listed uses its Grad-CAM tap, average-pooled.
EMBEDDING_TAPS: dict[str, tuple[str, int]] = {
    "efficientnet_lite0": ("pool", 1280),
    "vgg16": ("relu7", 4096),
    "vgg19": ("relu7", 4096),
}
MAX_BATCH = 256


@dataclass(frozen=True)
class Embeddings:
    """``vectors`` (N, D) float32, one row per input image, in input order."""

    vectors: np.ndarray
    tap: str
    normalized: bool
    predictions: list[list[Prediction]] | None = None  # top-k per image when asked (same forward pass)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])


def embedding_tap(backbone: Backbone) -> str:
    """The tap whose (pooled) output is the embedding of ``backbone``."""
    known = EMBEDDING_TAPS.get(backbone.name)
    return known[0] if known else backbone.default_cam_tap


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero: ReLU features can be all zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _chunks(images: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for image in images:
        chunk.append(image)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def embed(
    backbone: Backbone,
    images: Iterable[np.ndarray],
    *,
    normalize: bool = False,
    batch_size: int = 16,
    top: int = 0,
    total: int | None = None,
    cancel: CancelToken | None = None,
    progress: ProgressCallback | None = None,
) -> Embeddings:
    """Embed (H, W, 3) uint8 images (a sequence or a lazy iterable; ``total`` sizes the progress).

    ``normalize`` scales each vector to unit length (cosine similarity becomes a dot product); ``top`` > 0
    also returns each image's top-``top`` ImageNet predictions from the same forward pass.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise InvalidArgument(f"batch_size must be in 1..{MAX_BATCH}, got {batch_size}.")
    if not 0 <= top <= 1000:
        raise InvalidArgument(f"top must be in 0..1000, got {top}.")
    if total is None and isinstance(images, Sequence):
        total = len(images)
    tap = embedding_tap(backbone)
    taps = [tap, "logits"] if top else [tap]
    clock = ProgressClock(total or 0)
    rows: list[np.ndarray] = []
    predictions: list[list[Prediction]] = []
    done = 0
    for chunk in _chunks(images, batch_size):
        if cancel is not None:
            cancel.check()
        crops = [center_crop_resize(_checked(im), backbone.input_size) for im in chunk]
        with torch.inference_mode():
            out = backbone.features(images_to_batch(crops, backbone.device), taps)
        feats = out[tap]
        if feats.ndim == 4:  # a feature map (fallback tap): global average pool
            feats = feats.mean(dim=(2, 3))
        rows.append(feats.float().cpu().numpy())
        if top:
            predictions.extend(top_k(out["logits"], backbone.labels, top))
        done += len(chunk)
        if progress is not None:
            clock.total = max(total or 0, done)
            progress(clock.report(done, stage="embedding"))
    if not rows:
        raise InvalidArgument("Expected at least one image to embed.")
    vectors = np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32)
    if normalize:
        vectors = l2_normalize(vectors)
    return Embeddings(vectors, tap, normalize, predictions if top else None)


def _checked(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise InvalidArgument(f"Expected an (H, W, 3) uint8 image, got shape {shape}.")
    if min(image.shape[:2]) < 1:
        raise InvalidArgument("Cannot embed an empty image.")
    return image
