"""Texture synthesis: Gatys, Ecker & Bethge (2015), "Texture Synthesis Using Convolutional Neural
Networks" (arXiv:1505.07376).

Start from noise and match the Gram matrices of the source texture at several taps (no content term).
The per-layer normalised Gram distance of ``losses.normalized_style_loss`` keeps every tap on one scale.
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
from service.core.render.losses import gram_matrix, normalized_style_loss, tv_loss
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image


@dataclass
class TextureOptions:
    size: int = 256  # side of the square output
    source_side: int | None = None  # longer side the source is resized to (None: ``size``)
    taps: tuple[str, ...] | None = None  # None: the backbone's default style taps
    steps: int = 200
    optimizer: str = "lbfgs"  # or "adam"
    learning_rate: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    tv_weight: float = 0.0  # a little smoothness helps on shallow-tap noise; off by default
    seed: int = 0  # the starting noise; the same seed gives the same texture
    preview_every: int = 0
    max_side: int | None = None
    max_pixels: int | None = None


@releasing_memory
def texture_synthesis(
    backbone: Backbone,
    source: np.ndarray,
    options: TextureOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """A new ``size`` x ``size`` texture with the Gram statistics of ``source``; returns uint8 RGB.

    Progress reports ``style`` (the summed normalised Gram distance), ``tv`` and ``total``.
    """
    o = options or TextureOptions()
    check_image(source, "texture source")
    taps = tuple(o.taps) if o.taps else backbone.default_style_taps
    backbone.check_taps(taps)
    if o.optimizer not in OPTIMIZERS:
        raise InvalidArgument(f"Unknown optimizer {o.optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
    if o.size < 16 or o.steps < 1 or o.tv_weight < 0:
        raise InvalidArgument("size must be >= 16, steps >= 1 and tv_weight >= 0.")
    check_render_size(source.shape[0], source.shape[1], None, o.max_pixels, "texture source")
    check_render_size(o.size, o.size, o.max_side, o.max_pixels, "texture")
    sh, sw = scale_to_side(source.shape[0], source.shape[1], o.source_side or o.size)
    check_render_size(sh, sw, o.max_side, o.max_pixels, "resized texture source")
    device = backbone.device
    with torch.no_grad():
        src = resize_tensor(image_to_tensor(source, device), sh, sw)
        targets = {k: gram_matrix(v) for k, v in backbone.features(src, taps).items()}

    def objective(x: Tensor) -> dict[str, Tensor]:
        feats = backbone.features(x, taps)
        style = torch.stack([normalized_style_loss(gram_matrix(feats[t]), targets[t]) for t in taps]).sum()
        tv = o.tv_weight * tv_loss(x)
        return {"total": style + tv, "style": style, "tv": tv}

    x = seeded_noise((1, 3, o.size, o.size), o.seed, device, scale=1.0).requires_grad_(True)
    stepper = Stepper(o.steps, progress, cancel, o.preview_every)
    stepper.stage = "texture"
    lr = o.learning_rate or (1.0 if o.optimizer == "lbfgs" else 0.02)
    optimize_image(x, objective, o.steps, o.optimizer, lr, stepper)
    return tensor_to_image(x)
