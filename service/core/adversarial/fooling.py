"""Fooling images: Nguyen, Yosinski & Clune (2015), "Deep Neural Networks are Easily Fooled: High Confidence
Predictions for Unrecognizable Images" (arXiv:1412.1897), gradient-ascent variant (their Section 3.3,
after Simonyan et al. 2014).

Start from uniform noise and ascend the log-softmax of the target class with normalised gradient steps,
clipping to [0, 1], until the network gives the target at least ``confidence`` (or ``steps`` run out).
Unlike class visualisation (``render/class_viz.py``) there is no natural-image prior: the point is that the
network is confident about an image no person would recognise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from service.core.backbones.base import Backbone
from service.core.classify import Prediction, top_k
from service.core.errors import InvalidArgument
from service.core.labels import resolve_class
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import Stepper, releasing_memory, seeded_noise
from service.core.tensors import tensor_to_image


@dataclass
class FoolingOptions:
    size: int = 224
    steps: int = 200
    step_size: float = 2.0  # 0-255 units moved per step by the mean pixel (normalised gradient)
    confidence: float = 0.99  # stop once the target's probability reaches this
    noise: float = 1.0  # width of the initial uniform noise around grey, 0..1
    seed: int = 0
    top: int = 5


@dataclass(frozen=True)
class FoolingResult:
    image: np.ndarray  # (size, size, 3) uint8
    target: int
    probability: float  # the target's probability on the returned uint8 image
    predictions: list[Prediction]
    steps: int


def check_fooling_options(o: FoolingOptions) -> None:
    """Every range ``fooling_image`` needs; callers that queue the work (the server) check it up front."""
    if not 32 <= o.size <= 1024 or not 1 <= o.steps <= 5000:
        raise InvalidArgument(f"size must be in 32..1024 and steps in 1..5000, got {o.size} and {o.steps}.")
    if not (math.isfinite(o.step_size) and 0 < o.step_size <= 64):
        raise InvalidArgument(f"step_size must be in (0, 64] (0-255 units), got {o.step_size}.")
    if not (math.isfinite(o.confidence) and 0 < o.confidence <= 1) or not (
        math.isfinite(o.noise) and 0 <= o.noise <= 1
    ):
        raise InvalidArgument("confidence must be in (0, 1] and noise in [0, 1].")
    if not 1 <= o.top <= 1000:
        raise InvalidArgument(f"top must be in 1..1000, got {o.top}.")


@releasing_memory
def fooling_image(
    backbone: Backbone,
    target: int | str,
    options: FoolingOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> FoolingResult:
    """An unrecognisable image that ``backbone`` classifies as ``target`` with high confidence."""
    o = options or FoolingOptions()
    index = resolve_class(target, backbone.labels)
    check_fooling_options(o)
    x = seeded_noise((1, 3, o.size, o.size), o.seed, backbone.device, scale=o.noise)
    stepper = Stepper(o.steps, progress, cancel)
    stepper.stage = f"fooling {backbone.labels[index]}"
    taken = 0
    for _ in range(o.steps):
        stepper.begin()
        x = x.detach().requires_grad_(True)
        logp = torch.log_softmax(backbone(x), dim=1)[0, index]
        (grad,) = torch.autograd.grad(logp, x)
        with torch.no_grad():
            x = (x + (o.step_size / 255.0) * grad / grad.abs().mean().clamp_min(1e-12)).clamp(0.0, 1.0)
        taken += 1
        prob = _probability(backbone, x, index)
        stepper.end({"p_target": prob})
        if prob >= o.confidence:
            break
    image = tensor_to_image(x)
    final = (
        torch.from_numpy(image.copy()).permute(2, 0, 1).unsqueeze(0).float().div(255.0).to(backbone.device)
    )
    with torch.no_grad():
        logits = backbone(final)
    prob = float(torch.softmax(logits, dim=1)[0, index])
    return FoolingResult(image, index, prob, top_k(logits, backbone.labels, o.top)[0], taken)


def _probability(backbone: Backbone, x: torch.Tensor, index: int) -> float:
    # Measured on the uint8-rounded image: the stopping rule must hold for what is saved.
    with torch.no_grad():
        q = torch.round(x * 255.0) / 255.0
        return float(torch.softmax(backbone(q), dim=1)[0, index])
