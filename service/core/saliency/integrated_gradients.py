"""Integrated gradients.

Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks" (arXiv:1703.01365):
IG_i(x) = (x_i - x'_i) * integral_0^1 dS_c(x' + a (x - x')) / dx_i da, approximated here with the midpoint
Riemann sum over ``steps`` points (Captum's ``riemann_middle``). The baseline x' is a black image or a
heavily blurred copy of the input (Sturmfels, Lundberg & Lee 2020, "Visualizing the Impact of Feature
Attribution Baselines", Distill). The raw map is the attribution summed over colour channels (signed;
by completeness the whole map sums to about S_c(x) - S_c(x')).

Path points of all images are evaluated ``batch_size`` at a time (internal batching).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.saliency.base import Ticker, check_range, chunks, input_gradients
from service.core.saliency.blur import HEAVY_BLUR, heavy_blur

BASELINES = ("black", "blur")


@dataclass(frozen=True)
class IntegratedGradientsOptions:
    steps: int = 32  # points on the straight path from the baseline to the image
    baseline: str = "black"  # "black" or "blur"
    blur: float = HEAVY_BLUR  # blur sigma as a fraction of the shorter side (baseline "blur")
    batch_size: int = 8  # path points per forward/backward (activations of each are kept for backward)

    def __post_init__(self) -> None:
        check_range("steps", self.steps, 1, 4096)
        check_range("batch_size", self.batch_size, 1)
        check_range("blur", self.blur, 0.0, 1.0)
        if self.baseline not in BASELINES:
            raise InvalidArgument(f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}.")


def ig_baseline(x: Tensor, options: IntegratedGradientsOptions) -> Tensor:
    return torch.zeros_like(x) if options.baseline == "black" else heavy_blur(x, options.blur)


def ig_ticks(options: IntegratedGradientsOptions, batch: int, height: int, width: int) -> int:
    return len(chunks(options.steps, max(1, options.batch_size // batch)))


def integrated_gradient_attributions(
    backbone: Backbone, x: Tensor, targets: Tensor, options: IntegratedGradientsOptions, ticker: Ticker
) -> Tensor:
    """Per-channel IG attributions, shape (B, 3, H, W)."""
    b, c, h, w = x.shape
    base = ig_baseline(x, options)
    delta = x - base
    # Midpoints from a float32 linspace, as Captum builds them: IG in float32 is sensitive to one-ulp changes
    # of the path points at the 1e-3 level (measured), so the cross-check needs the same rounding.
    n = options.steps
    alphas = torch.linspace(0.5 / n, 1 - 0.5 / n, n, dtype=torch.float32).tolist()
    per_chunk = max(1, options.batch_size // b)  # path points per image in one forward
    grad_sum = torch.zeros_like(x)
    for part in chunks(options.steps, per_chunk):
        points = torch.cat([base + alphas[k] * delta for k in part])  # (S*B, 3, H, W), step-major
        grad = input_gradients(backbone, points, targets.repeat(len(part)))
        # Weight before summing (as Captum does): gradients along the path cancel heavily, so the float32
        # sum is only good to about 1e-3 and the order of operations shows at that level.
        grad_sum += (grad * (1.0 / options.steps)).view(len(part), b, c, h, w).sum(dim=0)
        ticker.tick()
    return grad_sum * delta


def integrated_gradients(
    backbone: Backbone, x: Tensor, targets: Tensor, options: IntegratedGradientsOptions, ticker: Ticker
) -> Tensor:
    return integrated_gradient_attributions(backbone, x, targets, options, ticker).sum(dim=1)
