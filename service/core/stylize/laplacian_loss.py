"""A structure term: the Laplacian of the pooled render against the pooled photo's.

Li, Xu, Nie, Liang and Hu 2017, "Laplacian-Steered Neural Style Transfer" (ACM Multimedia, arXiv:1707.01253):
the Gram and deep-feature content terms say nothing about where the photo's edges are at the scale of the
whole image, so a strong style weight paints strokes straight across them (the structure the fast nets lose,
docs/quality.md). Their fix, used here: average-pool both images (``pool`` px cells, so the painting's own
brush texture below that scale is free), apply the 3x3 Laplacian, and penalise the squared difference.

Unlike the paper's plain sum of squares, the error is divided by the photo's own Laplacian energy (taken
without gradient), so the term is 1 for a render with no structure at all and 0 for the photo's, whatever the
crop; the weight then means the same for every style and crop size. It works on (B, 3, H, W) batches in
[0, 1], per channel, the photo's layout in colour as well as in grey.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_KERNEL = ((0.0, -1.0, 0.0), (-1.0, 4.0, -1.0), (0.0, -1.0, 0.0))


def laplacian(images: Tensor, pool: int) -> Tensor:
    """The 3x3 Laplacian of ``images`` average-pooled by ``pool``, replicate-padded (no border edge)."""
    pooled = F.avg_pool2d(images, pool) if pool > 1 else images
    c = pooled.shape[1]
    kernel = torch.tensor(_KERNEL, dtype=pooled.dtype, device=pooled.device).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(pooled, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


def laplacian_loss(render: Tensor, photo: Tensor, pool: int = 4) -> Tensor:
    """Squared Laplacian error of ``render`` against ``photo`` ((B, 3, H, W) in [0, 1]) over the photo's
    Laplacian energy: a scalar, 0 when the pooled edges match, about 1 when the render has none."""
    target = laplacian(photo, pool).detach()
    energy = target.square().mean().clamp_min(1e-8)
    return (laplacian(render, pool) - target).square().mean() / energy
