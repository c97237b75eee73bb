"""Neural style transfer by optimisation: Gatys, Ecker & Bethge (2015), "A Neural Algorithm of Artistic
Style" (arXiv:1508.06576).

The image is optimised so its deep features match the content photo's and the Gram matrices of its
shallower features match the style painting's. Options follow jcjohnson/neural-style: several styles
with blend weights (one blended Gram target), style scale, noise or content initialisation, L-BFGS or
Adam, a total-variation prior, luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural
Artistic Style Transfer", arXiv:1606.05897) and a coarse-to-fine schedule (each scale starts from the
upsampled result of the previous one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import (
    OPTIMIZERS,
    Objective,
    Stepper,
    check_image,
    check_positive,
    check_render_size,
    optimize_image,
    releasing_memory,
    seeded_noise,
)
from service.core.render.losses import (
    blend_grams,
    gram_matrix,
    normalized_content_loss,
    normalized_style_loss,
    tv_loss,
    tv_loss_sum,
)
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image

INITS: tuple[str, ...] = ("content", "noise")
MIN_SIDE = 16


@dataclass(frozen=True)
class LossPreset:
    """Taps, default weights and loss normalisation for one backbone."""

    content_tap: str
    style_taps: tuple[str, ...]
    content_weight: float
    style_weight: float
    tv_weight: float
    # True: per-layer scale-free losses (losses.normalized_*); False: neural-style's plain MSE on
    # features rescaled to the Caffe VGG's range.
    normalized: bool
    feature_scale: float = 1.0


# EfficientNet-Lite0: taps measured here (docs/ARCHITECTURE.md, docs/renders.md); weights chosen by
# looking at renders of several content/style pairs at 256-512 px.
LITE0_PRESET = LossPreset(
    content_tap="block7",
    style_taps=("stem", "block1.expand", "block3.expand", "block5.expand", "block8.expand"),
    content_weight=1.0,
    style_weight=1e3,
    tv_weight=1.0,
    normalized=True,
)
# VGG: the neural-style defaults (content relu4_2, style relu1_1..relu5_1, weights 5 / 100, TV 1e-3).
# neural-style ran Caffe's VGG on 0..255 mean-subtracted pixels; torchvision's VGG sees those divided
# by 255 * std (about 57.6), so its features are rescaled by that factor to keep the loss magnitudes
# the defaults were chosen for (exact for the first layer, approximate deeper).
VGG_PRESET = LossPreset(
    content_tap="relu4_2",
    style_taps=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    content_weight=5.0,
    style_weight=100.0,
    tv_weight=1e-3,
    normalized=False,
    feature_scale=255.0 * 0.226,
)


@dataclass
class GatysOptions:
    size: int = 512  # longer side of the result (ignored when ``scales`` is given)
    steps: int = 300  # iterations (L-BFGS: closure evaluations) per scale
    scales: tuple[int, ...] | None = None  # coarse-to-fine longer sides, e.g. (256, 512); last = result size
    optimizer: str = "lbfgs"  # or "adam" (less memory: no gradient history)
    init: str = "content"  # or "noise"
    content_weight: float | None = None  # None: the backbone preset's value
    style_weight: float | None = None
    tv_weight: float | None = None
    style_scale: float = 1.0  # style images are resized to style_scale * the current side
    style_blend: tuple[float, ...] | None = None  # one weight per style image; None: equal
    preserve_color: bool = False  # keep the content's colours (luminance-only transfer)
    seed: int = 0  # noise initialisation; the same seed gives the same image
    preview_every: int = 0  # attach a preview image to every N-th progress report (0: none)
    scale_steps: tuple[int, ...] | None = None  # iterations per scale; None: ``steps`` at each
    learning_rate: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    content_tap: str | None = None  # None: the preset's
    style_taps: tuple[str, ...] | None = None
    max_side: int | None = None  # refuse results (and style images) with a longer side above this
    max_pixels: int | None = None  # refuse inputs or results with more pixels than this
    # VGG only: "avg" for average pools (Gatys et al. 2016). The caller builds the backbone with it
    # (get_backbone(..., pooling=)); gatys() itself reads the backbone it is given.
    pooling: str = "max"


def preset_for(backbone: Backbone) -> LossPreset:
    if backbone.name.startswith("vgg"):
        return VGG_PRESET
    if backbone.name == "efficientnet_lite0":
        return LITE0_PRESET
    # Any other backbone: its own default taps with the scale-free losses.
    return LossPreset(backbone.default_content_tap, backbone.default_style_taps, 1.0, 1e3, 1.0, True)


@dataclass(frozen=True)
class _Plan:
    sides: tuple[int, ...]
    steps: tuple[int, ...]
    blend: tuple[float, ...]
    preset: LossPreset


def _plan(backbone: Backbone, content: np.ndarray, styles: Sequence[np.ndarray], o: GatysOptions) -> _Plan:
    check_image(content, "content image")
    if not styles:
        raise InvalidArgument("Give at least one style image.")
    for i, s in enumerate(styles):
        check_image(s, f"style image {i + 1}")
    if o.optimizer not in OPTIMIZERS:
        raise InvalidArgument(f"Unknown optimizer {o.optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
    if o.init not in INITS:
        raise InvalidArgument(f"Unknown init {o.init!r}; use one of {', '.join(INITS)}.")
    sides = tuple(o.scales) if o.scales else (o.size,)
    if any(s < MIN_SIDE for s in sides):
        raise InvalidArgument(f"Sizes must be at least {MIN_SIDE} px, got {list(sides)}.")
    if any(b <= a for a, b in pairwise(sides)):
        raise InvalidArgument(f"Scales must increase, e.g. 256,512; got {list(sides)}.")
    steps = tuple(o.scale_steps) if o.scale_steps else (o.steps,) * len(sides)
    if len(steps) != len(sides):
        raise InvalidArgument(
            f"Give one step count per scale: {len(sides)} scales, {len(steps)} step counts."
        )
    if any(n < 1 for n in steps):
        raise InvalidArgument(f"Steps must be at least 1, got {list(steps)}.")
    blend = tuple(o.style_blend) if o.style_blend else (1.0,) * len(styles)
    if len(blend) != len(styles):
        raise InvalidArgument(f"Give one blend weight per style: {len(styles)} styles, {len(blend)} weights.")
    if any(w < 0 for w in blend) or sum(blend) <= 0:
        raise InvalidArgument(f"Style blend weights must be >= 0 and not all 0, got {list(blend)}.")
    check_positive(style_scale=o.style_scale)
    if not math.isfinite(sides[-1] * o.style_scale):  # else round() below raises OverflowError (a 500)
        raise InvalidArgument(f"style_scale {o.style_scale} is too large.")
    if o.learning_rate is not None:
        check_positive(learning_rate=o.learning_rate)
    for name in ("content_weight", "style_weight", "tv_weight"):
        value = getattr(o, name)
        if value is not None and value < 0:
            raise InvalidArgument(f"{name} must be >= 0, got {value}.")
    for what, img in [
        ("content image", content),
        *((f"style image {i + 1}", s) for i, s in enumerate(styles)),
    ]:
        check_render_size(img.shape[0], img.shape[1], None, o.max_pixels, what)
    h, w = scale_to_side(content.shape[0], content.shape[1], sides[-1])
    check_render_size(h, w, o.max_side, o.max_pixels, "result")
    for s in styles:
        sh, sw = scale_to_side(s.shape[0], s.shape[1], round(sides[-1] * o.style_scale))
        check_render_size(sh, sw, o.max_side, o.max_pixels, "scaled style image")
    base = preset_for(backbone)
    preset = LossPreset(
        content_tap=o.content_tap or base.content_tap,
        style_taps=tuple(o.style_taps) if o.style_taps else base.style_taps,
        content_weight=base.content_weight if o.content_weight is None else o.content_weight,
        style_weight=base.style_weight if o.style_weight is None else o.style_weight,
        tv_weight=base.tv_weight if o.tv_weight is None else o.tv_weight,
        normalized=base.normalized,
        feature_scale=base.feature_scale,
    )
    backbone.check_taps([preset.content_tap, *preset.style_taps])
    return _Plan(sides, steps, blend, preset)


def _features(backbone: Backbone, x: Tensor, p: LossPreset) -> dict[str, Tensor]:
    feats = backbone.features(x, [p.content_tap, *p.style_taps])
    if p.feature_scale != 1.0:
        feats = {k: v * p.feature_scale for k, v in feats.items()}
    return feats


def check_gatys(
    backbone: Backbone, content: np.ndarray, styles: list[np.ndarray], options: GatysOptions | None = None
) -> None:
    """Raise what ``gatys`` would raise for these inputs and options (``InvalidArgument``,
    ``ImageTooLarge``) without rendering: a server calls it before accepting the job, so a bad option is
    refused up front instead of failing a job it already accepted."""
    _plan(backbone, content, styles, options or GatysOptions())


@torch.no_grad()
def _targets(
    backbone: Backbone,
    content: Tensor,
    styles: Sequence[Tensor],
    blend: Sequence[float],
    p: LossPreset,
    style_side: int,
) -> tuple[Tensor, dict[str, Tensor]]:
    content_target = _features(backbone, content, p)[p.content_tap]
    per_style: list[dict[str, Tensor]] = []
    for s in styles:
        h, w = scale_to_side(s.shape[2], s.shape[3], style_side)
        feats = _features(backbone, resize_tensor(s, h, w), p)
        per_style.append({t: gram_matrix(feats[t]) for t in p.style_taps})
    grams = {t: blend_grams([g[t] for g in per_style], blend) for t in p.style_taps}
    return content_target, grams


def _objective(
    backbone: Backbone, p: LossPreset, content_target: Tensor, grams: Mapping[str, Tensor]
) -> Objective:
    def objective(x: Tensor) -> dict[str, Tensor]:
        feats = _features(backbone, x, p)
        if p.normalized:
            content = normalized_content_loss(feats[p.content_tap], content_target)
            style = torch.stack(
                [normalized_style_loss(gram_matrix(feats[t]), grams[t]) for t in p.style_taps]
            ).sum()
            tv = tv_loss(x)
        else:
            content = (feats[p.content_tap] - content_target).pow(2).mean()
            style = torch.stack(
                [(gram_matrix(feats[t]) - grams[t]).pow(2).mean() for t in p.style_taps]
            ).sum()
            tv = tv_loss_sum(x * 255.0)
        c, s, v = p.content_weight * content, p.style_weight * style, p.tv_weight * tv
        return {"total": c + s + v, "content": c, "style": s, "tv": v}

    return objective


def preserve_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance of ``stylized`` with the chroma of ``content`` (YCbCr, ITU-R BT.601; Gatys et al. 2016)."""
    from PIL import Image

    if content.shape != stylized.shape:
        content = np.asarray(Image.fromarray(content).resize(stylized.shape[1::-1], Image.Resampling.LANCZOS))
    y = np.asarray(Image.fromarray(stylized).convert("YCbCr"))[:, :, :1]
    cbcr = np.asarray(Image.fromarray(content).convert("YCbCr"))[:, :, 1:]
    return np.asarray(Image.fromarray(np.concatenate([y, cbcr], axis=2), mode="YCbCr").convert("RGB"))


@releasing_memory
def gatys(
    backbone: Backbone,
    content: np.ndarray,
    styles: list[np.ndarray],
    options: GatysOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Render ``content`` in the style of ``styles``; returns an (H, W, 3) uint8 image.

    The longer side of the result is ``options.size`` (or the last of ``options.scales``). Progress is
    reported after every iteration (L-BFGS closure evaluation) with the weighted loss terms; a cancel is
    honoured before the next one. Raises ``InvalidArgument`` for bad options and ``ImageTooLarge`` above
    ``max_side`` / ``max_pixels``.
    """
    o = options or GatysOptions()
    plan = _plan(backbone, content, styles, o)
    backbone = backbone.for_loss()  # a frozen objective: Lite0's batch norms folded, the same features
    p = plan.preset
    device = backbone.device
    lr = o.learning_rate or (1.0 if o.optimizer == "lbfgs" else 0.02)
    content_full = image_to_tensor(content, device)
    style_full = [image_to_tensor(s, device) for s in styles]
    stepper = Stepper(sum(plan.steps), progress, cancel, o.preview_every)
    x: Tensor | None = None
    for i, (side, n) in enumerate(zip(plan.sides, plan.steps, strict=True)):
        h, w = scale_to_side(content.shape[0], content.shape[1], side)
        c = resize_tensor(content_full, h, w)
        stepper.stage = (
            f"scale {i + 1}/{len(plan.sides)} ({side} px)" if len(plan.sides) > 1 else f"{side} px"
        )
        if x is None:
            start = c.clone() if o.init == "content" else seeded_noise(tuple(c.shape), o.seed, device, 0.5)
        else:
            start = resize_tensor(x.detach(), h, w).clamp(0.0, 1.0)
        x = start.contiguous().requires_grad_(True)
        content_target, grams = _targets(
            backbone, c, style_full, plan.blend, p, max(MIN_SIDE, round(side * o.style_scale))
        )
        optimize_image(x, _objective(backbone, p, content_target, grams), n, o.optimizer, lr, stepper)
        del content_target, grams
    assert x is not None
    out = tensor_to_image(x)
    if o.preserve_color:
        out = preserve_colors(out, content)
    return out


@torch.no_grad()
def gatys_loss(
    backbone: Backbone,
    image: np.ndarray,
    content: np.ndarray,
    styles: list[np.ndarray],
    options: GatysOptions | None = None,
) -> dict[str, float]:
    """The weighted loss terms of ``image`` as a result of ``gatys(content, styles, options)``.

    Evaluated at ``image``'s own size with the targets built as the last scale of a run builds them, so
    results of different schedules can be compared on one objective.
    """
    o = options or GatysOptions()
    plan = _plan(backbone, content, styles, o)
    device = backbone.device
    x = image_to_tensor(image, device)
    c = resize_tensor(image_to_tensor(content, device), x.shape[2], x.shape[3])
    side = max(x.shape[2], x.shape[3])
    style_side = max(MIN_SIDE, round(side * o.style_scale))
    content_target, grams = _targets(
        backbone, c, [image_to_tensor(s, device) for s in styles], plan.blend, plan.preset, style_side
    )
    terms = _objective(backbone, plan.preset, content_target, grams)(x)
    return {k: float(v) for k, v in terms.items()}
