"""ImageNet classification with a backbone: the preprocessing its training used, and top-k predictions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.tensors import images_to_batch

# Standard ImageNet evaluation: resize the short side to size / 0.875, then centre-crop size x size.
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


def center_crop_resize(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Resize the short side to ``size / 0.875`` (bicubic) and take the central ``size`` x ``size`` crop."""
    h, w = image.shape[:2]
    short = round(size / CROP_FRACTION)
    scale = short / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BICUBIC))
    top, left = (nh - size) // 2, (nw - size) // 2
    return resized[top : top + size, left : left + size]


def top_k(logits: torch.Tensor, labels: Sequence[str], k: int) -> list[list[Prediction]]:
    """Top-k predictions per row of a (B, C) logits tensor."""
    probs = torch.softmax(logits.float(), dim=1)
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [
        [Prediction(int(i), labels[int(i)], float(v)) for v, i in zip(vr, ir, strict=True)]
        for vr, ir in zip(values.tolist(), indices.tolist(), strict=True)
    ]


@torch.inference_mode()
def classify(backbone: Backbone, images: Sequence[np.ndarray], k: int = 5) -> list[list[Prediction]]:
    """Classify (H, W, 3) uint8 images; returns the top-``k`` predictions of each, highest first."""
    if not 1 <= k <= 1000:
        raise InvalidArgument(f"top-k must be between 1 and 1000, got {k}.")
    crops = [center_crop_resize(im, backbone.input_size) for im in images]
    batch = images_to_batch(crops, backbone.device)
    return top_k(backbone(batch), backbone.labels, k)
