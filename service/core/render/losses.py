"""Loss terms shared by the slow renders: Gram matrices, style/content distances, total variation.

The Gram matrix of a feature map is the texture statistic of Gatys, Ecker & Bethge (2015), "Texture
Synthesis Using Convolutional Neural Networks" (arXiv:1505.07376) and "A Neural Algorithm of Artistic
Style" (arXiv:1508.06576). The total-variation prior is the one of Mahendran & Vedaldi (2015),
"Understanding Deep Image Representations by Inverting Them" (arXiv:1412.0035).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def gram_matrix(features: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix divided by C*H*W (so it does not grow with image size)."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def blend_grams(grams: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Weighted sum of Gram matrices (weights are normalised to sum to 1): the blended style target."""
    total = float(sum(weights))
    out = torch.zeros_like(grams[0])
    for g, w in zip(grams, weights, strict=True):
        out = out + g * (w / total)
    return out


def normalized_style_loss(gram: Tensor, target: Tensor) -> Tensor:
    """Mean squared Gram difference divided by the squared mean magnitude of the target Gram.

    The normalisation makes every layer contribute on the same scale whatever its activation magnitude,
    so one style weight works across taps and backbones (measured useful for EfficientNet-Lite0, whose
    ReLU6 expand activations differ by orders of magnitude between blocks).
    """
    scale = target.abs().mean().clamp_min(1e-12) ** 2
    return (gram - target).pow(2).mean() / scale


def normalized_content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared feature difference divided by the mean square of the target (scale-free)."""
    return (features - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-12)


def tv_loss(x: Tensor) -> Tensor:
    """Total variation: mean squared difference of horizontally and vertically adjacent pixels."""
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    return dh.pow(2).mean() + dw.pow(2).mean()


def tv_loss_sum(x: Tensor) -> Tensor:
    """Total variation as neural-style computes it: half the sum of squared neighbour differences."""
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    return 0.5 * (dh.pow(2).sum() + dw.pow(2).sum())


def softmax3d(features: Tensor, temperature: float = 1.0) -> Tensor:
    """SWAG activation smoothing (Wang, Li & Vasconcelos, CVPR 2021, "Rethinking and Improving the
    Robustness of Image Style Transfer", arXiv:2104.05623; their ``softmax3d``): a softmax over all of
    C, H and W of each (B, C, H, W) feature map, per image.

    Opt-in, for the deep taps only. The paper finds that non-residual VGG works for style because its deep
    activations are spread out, while a net with shortcuts (ResNet; here EfficientNet-Lite0) concentrates
    them in a few large peaks whose Gram matrices a style loss then chases; the softmax turns each map into
    a smooth distribution (entropy up, peaks flattened) before the Gram or content term is taken. Callers
    normalise their terms by the target's scale, so the tiny magnitudes (the map sums to 1) do not matter.
    """
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c * h * w) / temperature
    return torch.softmax(flat, dim=1).reshape(b, c, h, w)
