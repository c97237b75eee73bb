"""Gradient x input.

Shrikumar, Greenside, Shcherbina & Kundaje 2016, "Not Just a Black Box: Learning Important Features Through
Propagating Activation Differences" (arXiv:1605.01713): the attribution of a pixel is x * dS_c/dx, summed
over colour channels. It is the first-order Taylor term of the score relative to a black image; the raw map
is signed (positive = evidence for the class).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.saliency.base import Ticker, input_gradients


@dataclass(frozen=True)
class GradientXInputOptions:
    """No parameters: one forward and one backward per batch."""


def gradient_x_input(
    backbone: Backbone, x: Tensor, targets: Tensor, options: GradientXInputOptions, ticker: Ticker
) -> Tensor:
    grad = input_gradients(backbone, x, targets)
    ticker.tick()
    return (grad * x).sum(dim=1)
