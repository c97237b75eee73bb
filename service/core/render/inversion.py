"""Feature inversion: Mahendran & Vedaldi (2015), "Understanding Deep Image Representations by Inverting
Them" (arXiv:1412.0035).

Reconstruct an image from the activations of one tap: start from noise and minimise the normalised
feature distance ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2`` plus a total-variation prior, which keeps
the reconstruction a natural-looking image rather than adversarial noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import (
    OPTIMIZERS,
    Stepper,
    check_image,
    check_render_size,
    optimize_image,
    releasing_memory,
    seeded_noise,
)
from service.core.render.losses import normalized_content_loss, tv_loss
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image


@dataclass
class InversionOptions:
    tap: str | None = None  # None: the backbone's default content tap
    size: int = 224  # longer side of the reconstruction
    steps: int = 200
    optimizer: str = "adam"  # or "lbfgs"
    learning_rate: float | None = None  # None: 0.05 for Adam, 1.0 for L-BFGS
    tv_weight: float = 30.0  # total-variation prior; 5 left colour noise at 100 steps, 30 did not
    seed: int = 0
    preview_every: int = 0
    max_side: int | None = None
    max_pixels: int | None = None


@releasing_memory
def feature_inversion(
    backbone: Backbone,
    image: np.ndarray,
    options: InversionOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Reconstruct ``image`` from its activations at ``options.tap``; returns (H, W, 3) uint8.

    Progress reports ``feature`` (the normalised feature distance), ``tv`` and ``total``.
    """
    o = options or InversionOptions()
    check_image(image)
    tap = o.tap or backbone.default_content_tap
    backbone.check_taps([tap])
    if o.optimizer not in OPTIMIZERS:
        raise InvalidArgument(f"Unknown optimizer {o.optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
    if o.size < 16 or o.steps < 1 or o.tv_weight < 0:
        raise InvalidArgument("size must be >= 16, steps >= 1 and tv_weight >= 0.")
    check_render_size(image.shape[0], image.shape[1], None, o.max_pixels, "image")
    h, w = scale_to_side(image.shape[0], image.shape[1], o.size)
    check_render_size(h, w, o.max_side, o.max_pixels, "reconstruction")
    device = backbone.device
    target_image = resize_tensor(image_to_tensor(image, device), h, w)
    with torch.no_grad():
        target = backbone.features(target_image, [tap])[tap]

    def objective(x: Tensor) -> dict[str, Tensor]:
        feature = normalized_content_loss(backbone.features(x, [tap])[tap], target)
        tv = o.tv_weight * tv_loss(x)
        return {"total": feature + tv, "feature": feature, "tv": tv}

    x = seeded_noise((1, 3, h, w), o.seed, device, scale=0.2).requires_grad_(True)
    stepper = Stepper(o.steps, progress, cancel, o.preview_every)
    stepper.stage = f"invert {tap}"
    lr = o.learning_rate or (0.05 if o.optimizer == "adam" else 1.0)
    optimize_image(x, objective, o.steps, o.optimizer, lr, stepper)
    return tensor_to_image(x)
