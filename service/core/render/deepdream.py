"""DeepDream: Mordvintsev, Olah & Tyka (2015), "Inceptionism: Going Deeper into Neural Networks" (Google
Research blog) and the accompanying deepdream notebook.

Gradient *ascent* on the image to amplify what chosen layers already see. As in the notebook: the step
is normalised by the mean absolute gradient; the image is randomly rolled before each step (jitter);
the work runs over octaves from coarse to fine, carrying the detail added at one octave to the next;
images larger than a tile get their gradient tile by tile after the random roll, so the tile borders
move every step and leave no seams. An optional guide image replaces the objective by the notebook's
guided one: each position's features are pushed towards the guide's best-matching feature vector.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import (
    Stepper,
    check_image,
    check_positive,
    check_render_size,
    random_roll,
    releasing_memory,
    unroll,
)
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image

MIN_OCTAVE_SIDE = 32

# Layers that dream well by default; chosen by looking at renders (docs/renders.md).
DEFAULT_LAYERS: dict[str, tuple[str, ...]] = {
    "efficientnet_lite0": ("block6", "block9"),
    "vgg16": ("relu4_3",),
    "vgg19": ("relu4_4",),
}


@dataclass
class DreamOptions:
    layers: tuple[str, ...] = ()  # taps to amplify; () = the backbone's DEFAULT_LAYERS
    channel: int | None = None  # amplify one channel of every layer instead of the whole layer
    octaves: int = 4  # number of scales; each is octave_scale times smaller than the next
    octave_scale: float = 1.4
    steps: int = 10  # gradient steps per octave
    step_size: float = 0.01  # pixels (in [0, 1]) moved per step, relative to the mean |gradient|
    jitter: int = 32  # largest random roll (px) before each step
    tile_size: int = 512  # gradients are computed in tiles of at most this side
    guide: np.ndarray | None = None  # optional guide image (H, W, 3) uint8
    seed: int = 0  # jitter sequence; the same seed gives the same image
    preview_every: int = 0  # attach a preview to every N-th progress report (0: none)
    size: int | None = None  # resize the input so its longer side is this (None: keep its size)
    max_side: int | None = None  # refuse images whose longer side is above this
    max_pixels: int | None = None  # refuse images with more pixels than this
    # VGG only: "avg" for average pools. The caller builds the backbone with it
    # (get_backbone(..., pooling=)); deepdream() itself reads the backbone it is given.
    pooling: str = "max"


def default_layers(backbone: Backbone) -> tuple[str, ...]:
    layers = DEFAULT_LAYERS.get(backbone.name)
    if layers:
        return layers
    return (backbone.default_content_tap,)


def _validate(backbone: Backbone, image: np.ndarray, o: DreamOptions) -> tuple[tuple[str, ...], int, int]:
    check_image(image, "image")
    layers = tuple(o.layers) if o.layers else default_layers(backbone)
    backbone.check_taps(layers)
    if o.octaves < 1:
        raise InvalidArgument(f"octaves must be at least 1, got {o.octaves}.")
    if o.steps < 1:
        raise InvalidArgument(f"steps must be at least 1, got {o.steps}.")
    if o.octave_scale < 1.0:
        raise InvalidArgument(f"octave_scale must be >= 1, got {o.octave_scale}.")
    check_positive(step_size=o.step_size)
    if o.jitter < 0:
        raise InvalidArgument(f"jitter must be >= 0, got {o.jitter}.")
    if o.tile_size < MIN_OCTAVE_SIDE:
        raise InvalidArgument(f"tile_size must be at least {MIN_OCTAVE_SIDE}, got {o.tile_size}.")
    if o.size is not None and o.size < MIN_OCTAVE_SIDE:
        raise InvalidArgument(f"size must be at least {MIN_OCTAVE_SIDE}, got {o.size}.")
    check_render_size(image.shape[0], image.shape[1], None, o.max_pixels, "image")
    h, w = image.shape[:2] if o.size is None else scale_to_side(image.shape[0], image.shape[1], o.size)
    check_render_size(h, w, o.max_side, o.max_pixels, "image")
    if o.guide is not None:
        check_image(o.guide, "guide image")
        check_render_size(o.guide.shape[0], o.guide.shape[1], o.max_side, o.max_pixels, "guide image")
    if o.channel is not None:
        with torch.no_grad():
            probe = backbone.features(torch.zeros(1, 3, 64, 64, device=backbone.device), layers)
        for name, act in probe.items():
            if not 0 <= o.channel < act.shape[1]:
                raise InvalidArgument(
                    f"channel {o.channel} is out of range: {name} has {act.shape[1]} channels."
                )
    return layers, h, w


def check_deepdream(backbone: Backbone, image: np.ndarray, options: DreamOptions | None = None) -> None:
    """Raise what ``deepdream`` would raise for these inputs and options, without dreaming (a server
    calls it before accepting the job)."""
    _validate(backbone, image, options or DreamOptions())


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Sizes from coarse to fine; octaves that would be smaller than MIN_OCTAVE_SIDE are dropped."""
    sizes = []
    for k in reversed(range(octaves)):
        h, w = round(height / scale**k), round(width / scale**k)
        if min(h, w) >= MIN_OCTAVE_SIDE or k == 0:
            sizes.append((h, w))
    return sizes


def _tile_edges(length: int, tile: int) -> list[int]:
    """Evenly sized tiles (no sliver at the end): n = ceil(length / tile) tiles."""
    n = max(1, math.ceil(length / tile))
    return [round(i * length / n) for i in range(n + 1)]


class _Objective:
    """The quantity DeepDream increases, for one image (tile) batch."""

    def __init__(self, backbone: Backbone, layers: tuple[str, ...], channel: int | None) -> None:
        self.backbone = backbone
        self.layers = layers
        self.channel = channel
        self.guide: dict[str, Tensor] | None = None  # (C, M) guide features per layer

    def set_guide(self, guide: Tensor | None) -> None:
        if guide is None:
            self.guide = None
            return
        with torch.no_grad():
            feats = self.backbone.features(guide, self.layers)
        self.guide = {k: v[0].flatten(1) for k, v in feats.items()}

    def __call__(self, x: Tensor) -> Tensor:
        feats = self.backbone.features(x, self.layers)
        terms = []
        for name, act in feats.items():
            if self.guide is not None:
                a = act[0].flatten(1)  # (C, N)
                g = self.guide[name]  # (C, M)
                # Each position follows the guide vector it already resembles most (notebook's objective).
                best = (a.t() @ g).argmax(dim=1).detach()
                terms.append((a * g[:, best]).sum(dim=0).mean())
            elif self.channel is not None:
                terms.append(act[:, self.channel].mean())
            else:
                terms.append(act.pow(2).mean())  # the notebook's "L2" objective: gradient = activation
        return torch.stack(terms).sum()


def tiled_gradient(
    x: Tensor, objective: _Objective, tile: int, cancel: CancelToken | None = None
) -> tuple[Tensor, float]:
    """Gradient of the objective w.r.t. ``x`` (1, 3, H, W), tile by tile; also the area-weighted value.

    ``cancel`` is checked before every tile: one step of a large image is many tiles, each a full
    forward and backward pass, so a cancel should not wait for the whole step."""
    grad = torch.zeros_like(x)
    total, area = 0.0, x.shape[2] * x.shape[3]
    ys, xs = _tile_edges(x.shape[2], tile), _tile_edges(x.shape[3], tile)
    for y0, y1 in itertools.pairwise(ys):
        for x0, x1 in itertools.pairwise(xs):
            if cancel is not None:
                cancel.check()
            part = x[:, :, y0:y1, x0:x1].detach().requires_grad_(True)
            value = objective(part)
            (g,) = torch.autograd.grad(value, part)
            grad[:, :, y0:y1, x0:x1] = g
            total += float(value.detach()) * (y1 - y0) * (x1 - x0) / area
    return grad, total


@releasing_memory
def deepdream(
    backbone: Backbone,
    image: np.ndarray,
    options: DreamOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Dream on ``image`` (H, W, 3) uint8; returns an image of the same size (or ``options.size``).

    Progress reports ``objective`` (the value before the step) after every step of every octave; a
    cancel is honoured before every octave, every step and every gradient tile.
    """
    o = options or DreamOptions()
    layers, height, width = _validate(backbone, image, o)
    device = backbone.device
    rng = np.random.default_rng(o.seed)
    objective = _Objective(backbone, layers, o.channel)
    base_full = resize_tensor(image_to_tensor(image, device), height, width)
    guide_full = image_to_tensor(o.guide, device) if o.guide is not None else None
    sizes = octave_sizes(height, width, o.octaves, o.octave_scale)
    stepper = Stepper(len(sizes) * o.steps, progress, cancel, o.preview_every)
    detail = torch.zeros(1, 3, *sizes[0], device=device)
    x = base_full
    for i, (h, w) in enumerate(sizes):
        if cancel is not None:
            cancel.check()  # resizing to the next octave (and its guide features) is work too
        stepper.stage = f"octave {i + 1}/{len(sizes)} ({w}x{h})"
        base = resize_tensor(base_full, h, w)
        if guide_full is not None:
            gh, gw = scale_to_side(guide_full.shape[2], guide_full.shape[3], min(max(h, w), o.tile_size))
            objective.set_guide(resize_tensor(guide_full, gh, gw))
        x = (base + resize_tensor(detail, h, w)).clamp(0.0, 1.0)
        for _ in range(o.steps):
            stepper.begin()
            rolled, shift = random_roll(x, o.jitter, rng)
            grad, value = tiled_gradient(rolled, objective, o.tile_size, cancel)
            grad = unroll(grad, shift)
            with torch.no_grad():
                # Normalising by the mean |gradient| makes step_size a pixel distance, whatever the layer.
                x = (x + o.step_size * grad / grad.abs().mean().clamp_min(1e-8)).clamp(0.0, 1.0)
            stepper.end({"objective": value}, x)
        detail = x - base
    return tensor_to_image(x)
