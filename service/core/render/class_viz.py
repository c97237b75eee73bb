"""Class-model visualisation: Simonyan, Vedaldi & Zisserman (2014), "Deep Inside Convolutional Networks:
Visualising Image Classification Models and Saliency Maps" (arXiv:1312.6034).

Gradient ascent from a grey image on ``S_c(I) - lambda * ||I - 0.5||^2`` (the unnormalised class score
with an L2 penalty), with the regularisers of Yosinski et al. (2015, "Understanding Neural Networks
Through Deep Visualization", arXiv:1506.06579) as used in CS231n: random jitter before each step, a
Gaussian blur every few steps and clipping to the valid pixel range.

``parametrization="fourier"`` (the default) optimises the image in a decorrelated Fourier basis instead
(Olah, Mordvintsev & Schubert 2017, "Feature Visualization", Distill; see ``params.py``) with Adam, the
same jitter and a small random rescale per step: on EfficientNet-Lite0 the pixel method gives faint,
noisy images, the Fourier one saturated, recognisable structures. The L2 penalty and the blur belong to
the pixel method; the sigmoid of the Fourier image keeps pixels in range by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.labels import resolve_class
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import (
    Stepper,
    check_positive,
    check_render_size,
    gaussian_blur,
    random_roll,
    releasing_memory,
    seeded_noise,
    unroll,
)
from service.core.render.params import FourierImage
from service.core.tensors import tensor_to_image

PARAMETRIZATIONS = ("fourier", "pixel")


@dataclass
class ClassVizOptions:
    size: int = 224  # square side (the classifier's training resolution suits it best)
    steps: int = 200
    step_size: float = 0.01  # pixels (in [0, 1]) moved per step, relative to the mean |gradient|
    l2_weight: float = 1e-3  # lambda of the L2 penalty, on the sum of squared pixel offsets from grey
    jitter: int = 32  # largest random roll (px) before each step
    blur_every: int = 10  # blur every N steps (0: never)
    blur_sigma: float = 0.5
    seed: int = 0  # the initial noise; the same seed gives the same image
    parametrization: str = "fourier"  # "fourier" (decorrelated spectrum, Adam) or "pixel" (Simonyan et al.)
    learning_rate: float = 0.05  # Adam's, for the Fourier parametrisation
    scale_jitter: float = 0.25  # Fourier: random rescale by up to this fraction before each step
    preview_every: int = 0
    max_side: int | None = None
    max_pixels: int | None = None


@releasing_memory
def class_visualization(
    backbone: Backbone,
    target: int | str,
    options: ClassVizOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """An image that the backbone scores highly as ImageNet class ``target`` (index or label name).

    Progress reports ``score`` (the raw logit) and ``objective`` (score minus the L2 penalty).
    """
    o = options or ClassVizOptions()
    index = resolve_class(target, backbone.labels)
    if o.size < 16:
        raise InvalidArgument(f"size must be at least 16, got {o.size}.")
    if o.steps < 1:
        raise InvalidArgument(f"steps must be at least 1, got {o.steps}.")
    check_positive(step_size=o.step_size)
    if o.l2_weight < 0 or o.jitter < 0 or o.blur_every < 0 or o.blur_sigma < 0:
        raise InvalidArgument("l2_weight, jitter, blur_every and blur_sigma must be >= 0.")
    check_render_size(o.size, o.size, o.max_side, o.max_pixels, "visualisation")
    if o.parametrization not in PARAMETRIZATIONS:
        raise InvalidArgument(
            f"Unknown parametrization {o.parametrization!r}; use one of {', '.join(PARAMETRIZATIONS)}."
        )
    check_positive(learning_rate=o.learning_rate)
    if not 0 <= o.scale_jitter < 1:
        raise InvalidArgument(f"scale_jitter must be in [0, 1), got {o.scale_jitter}.")
    if o.parametrization == "fourier":
        return _fourier(backbone, index, o, Stepper(o.steps, progress, cancel, o.preview_every))
    device = backbone.device
    rng = np.random.default_rng(o.seed)
    x = seeded_noise((1, 3, o.size, o.size), o.seed, device, scale=0.2)
    stepper = Stepper(o.steps, progress, cancel, o.preview_every)
    stepper.stage = f"class {index} ({backbone.labels[index]})"
    for step in range(1, o.steps + 1):
        stepper.begin()
        rolled, shift = random_roll(x, o.jitter, rng)
        rolled = rolled.detach().requires_grad_(True)
        score = backbone.features(rolled, ["logits"])["logits"][0, index]
        objective = score - o.l2_weight * (rolled - 0.5).pow(2).sum()
        (grad,) = torch.autograd.grad(objective, rolled)
        with torch.no_grad():
            x = unroll(rolled + o.step_size * grad / grad.abs().mean().clamp_min(1e-8), shift).clamp(0.0, 1.0)
            if o.blur_every and step % o.blur_every == 0:
                x = gaussian_blur(x, o.blur_sigma).clamp(0.0, 1.0)
        stepper.end({"score": float(score.detach()), "objective": float(objective.detach())}, x)
    return tensor_to_image(x)


def _fourier(backbone: Backbone, index: int, o: ClassVizOptions, stepper: Stepper) -> np.ndarray:
    """Adam on the spectrum of a ``FourierImage``; each step sees a randomly rolled and rescaled copy
    (transformation robustness, Olah et al. 2017), so the image cannot rely on one exact pixel grid."""
    device = backbone.device
    rng = np.random.default_rng(o.seed)
    image = FourierImage(o.size, o.size, seed=o.seed, device=device)
    adam = torch.optim.Adam(image.parameters(), lr=o.learning_rate)
    stepper.stage = f"class {index} ({backbone.labels[index]})"
    for _ in range(o.steps):
        stepper.begin()
        adam.zero_grad(set_to_none=True)
        x = image()
        seen, _ = random_roll(x, o.jitter, rng)
        if o.scale_jitter > 0:
            factor = 1.0 + float(rng.uniform(-o.scale_jitter, o.scale_jitter))
            side = max(16, round(o.size * factor))
            seen = F.interpolate(seen, size=(side, side), mode="bilinear", align_corners=False)
        score = backbone.features(seen, ["logits"])["logits"][0, index]
        (-score).backward()
        adam.step()
        stepper.end(
            {"score": float(score.detach()), "objective": float(score.detach())}, lambda: image().detach()
        )
    with torch.no_grad():
        return tensor_to_image(image())
