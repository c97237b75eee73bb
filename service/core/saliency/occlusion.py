"""Occlusion sensitivity.

Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks" (arXiv:1311.2901): slide a
``window`` x ``window`` patch filled with ``fill`` over the image with ``stride``; the attribution of a
pixel is the mean drop of the class score over the windows that cover it. Window placement follows
Captum's ``Occlusion`` (the last window may hang over the edge and is cropped), so the two agree.

All occluded copies (windows x images) go through the net ``batch_size`` at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.saliency.base import Ticker, check_range, chunks, target_scores


@dataclass(frozen=True)
class OcclusionOptions:
    window: int = 32  # side of the square patch, pixels of the working image
    stride: int = 16
    fill: float = 0.5  # patch value in [0, 1] (grey)
    batch_size: int = 64  # occluded images per forward

    def __post_init__(self) -> None:
        check_range("window", self.window, 1)
        check_range("stride", self.stride, 1)
        check_range("fill", self.fill, 0.0, 1.0)
        check_range("batch_size", self.batch_size, 1)


def window_offsets(size: int, window: int, stride: int) -> list[int]:
    """Top/left offsets along one axis: ceil((size - window) / stride) + 1 windows, as Captum places them."""
    window = min(window, size)
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def occlusion_ticks(options: OcclusionOptions, batch: int, height: int, width: int) -> int:
    n = len(window_offsets(height, options.window, options.stride)) * len(
        window_offsets(width, options.window, options.stride)
    )
    return len(chunks(n, max(1, options.batch_size // batch)))


def occlusion(
    backbone: Backbone, x: Tensor, targets: Tensor, options: OcclusionOptions, ticker: Ticker
) -> Tensor:
    b, c, h, w = x.shape
    wh, ww = min(options.window, h), min(options.window, w)
    boxes = [
        (top, left)
        for top in window_offsets(h, wh, options.stride)
        for left in window_offsets(w, ww, options.stride)
    ]
    total = torch.zeros((b, h, w), device=x.device)
    count = torch.zeros((h, w), device=x.device)
    with torch.no_grad():
        base = target_scores(backbone(x), targets)  # (B,)
        for part in chunks(len(boxes), max(1, options.batch_size // b)):
            batch = x.unsqueeze(0).repeat(len(part), 1, 1, 1, 1)  # (N, B, 3, H, W)
            for n, i in enumerate(part):
                top, left = boxes[i]
                batch[n, :, :, top : top + wh, left : left + ww] = options.fill
            scores = target_scores(backbone(batch.view(-1, c, h, w)), targets.repeat(len(part)))
            drops = base.unsqueeze(0) - scores.view(len(part), b)  # (N, B)
            for n, i in enumerate(part):
                top, left = boxes[i]
                total[:, top : top + wh, left : left + ww] += drops[n].view(b, 1, 1)
                count[top : top + wh, left : left + ww] += 1
            ticker.tick()
    return total / count
