"""Guided backpropagation.

Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for Simplicity: The All Convolutional Net"
(arXiv:1412.6806): backpropagate through every ReLU only where both the forward input and the backward
gradient are positive. The backbones' activations are distinct ``nn.ReLU`` / ``nn.ReLU6`` modules, so
backward hooks on them (``hooks.guided_relus``) implement the rule; for ReLU6 the forward mask is
0 < x < 6. The map is max over colour channels of |guided gradient|.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.saliency.base import Ticker, input_gradients
from service.core.saliency.hooks import guided_relus


@dataclass(frozen=True)
class GuidedBackpropOptions:
    """No parameters: one forward and one backward per batch, with guided ReLU hooks."""


def guided_gradients(backbone: Backbone, x: Tensor, targets: Tensor, ticker: Ticker) -> Tensor:
    """Guided-backprop gradient of each target logit w.r.t. the input, shape (B, 3, H, W)."""
    with guided_relus(backbone) as hooked:
        if hooked == 0:
            raise InvalidArgument(
                f"Guided backprop needs ReLU activations; backbone {backbone.name} has none."
            )
        grad = input_gradients(backbone, x, targets)
        ticker.tick()  # inside the block: a cancel here must still remove the hooks
    return grad


def guided_backprop(
    backbone: Backbone, x: Tensor, targets: Tensor, options: GuidedBackpropOptions, ticker: Ticker
) -> Tensor:
    return guided_gradients(backbone, x, targets, ticker).abs().amax(dim=1)
