"""The first-layer filters of a backbone as one image (as in Krizhevsky et al. 2012, "ImageNet
Classification with Deep Convolutional Neural Networks", Fig. 3, and the CS231n visualisation notes)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument


def first_conv_weight(backbone: Backbone) -> Tensor:
    """(out, 3, k, k) weights of the first convolution that reads the RGB image."""
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            return module.weight.detach()
    raise InvalidArgument(f"Backbone {backbone.name} has no convolution on the RGB input.")


def filter_grid(
    backbone: Backbone, scale: int = 8, padding: int = 1, columns: int | None = None
) -> np.ndarray:
    """Tile the first-layer RGB filters into an (H, W, 3) uint8 image.

    Each filter is min-max scaled on its own (the shapes matter, not the absolute weights) and enlarged
    ``scale`` times with nearest-neighbour so its pixels stay visible; ``padding`` pixels of white
    separate the tiles.
    """
    if scale < 1 or padding < 0:
        raise InvalidArgument(f"scale must be >= 1 and padding >= 0, got {scale} and {padding}.")
    w = first_conv_weight(backbone).float().cpu()  # (N, 3, k, k)
    n, _, kh, kw = w.shape
    cols = columns or math.ceil(math.sqrt(n))
    if cols < 1:
        raise InvalidArgument(f"columns must be >= 1, got {cols}.")
    rows = math.ceil(n / cols)
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - lo) / (hi - lo).clamp_min(1e-12)
    w = w.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    th, tw = kh * scale, kw * scale
    grid = torch.ones(3, rows * (th + padding) + padding, cols * (tw + padding) + padding)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = padding + r * (th + padding), padding + c * (tw + padding)
        grid[:, y : y + th, x : x + tw] = w[i]
    return (grid.permute(1, 2, 0).mul(255).round().to(torch.uint8)).numpy().copy()
