"""Vanilla gradient saliency.

Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks: Visualising Image Classification
Models and Saliency Maps" (arXiv:1312.6034): the map is max over colour channels of
|d S_c / d x|, where S_c is the class score (the logit, before softmax).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.saliency.base import Ticker, input_gradients


@dataclass(frozen=True)
class GradientOptions:
    """No parameters: one forward and one backward per batch."""


def gradient(
    backbone: Backbone, x: Tensor, targets: Tensor, options: GradientOptions, ticker: Ticker
) -> Tensor:
    grad = input_gradients(backbone, x, targets)  # (B, 3, H, W)
    ticker.tick()
    return grad.abs().amax(dim=1)
