"""Gaussian blur for baselines and replacements (integrated gradients' blurred baseline, deletion curves).

A separable convolution with replicate padding, so any sigma works at any image size (torchvision's
reflect padding refuses kernels larger than the image, which a *heavy* blur of a small image needs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Default strength of the "heavily blurred copy": sigma as a fraction of the shorter side. At 224 px this is
# sigma 11 px, which removes the object detail the classifier needs (the top-1 probability of the
# scikit-image photos drops to a few percent) while keeping the colours and the layout.
HEAVY_BLUR = 0.05


def gaussian_kernel(sigma: float, radius: int, device: torch.device) -> Tensor:
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Blur a (B, C, H, W) batch with a Gaussian of standard deviation ``sigma`` pixels."""
    if sigma <= 0:
        return x
    radius = max(1, int(3.0 * sigma + 0.5))
    k = gaussian_kernel(sigma, radius, x.device).to(x.dtype)
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def heavy_blur(x: Tensor, fraction: float = HEAVY_BLUR) -> Tensor:
    """The blurred copy used as IG baseline and deletion replacement: sigma = fraction * shorter side."""
    return gaussian_blur(x, fraction * min(x.shape[-2:]))
