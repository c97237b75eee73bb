"""``explain``: saliency maps for a list of images with one method, plus the predictions explained.

Pipeline per call: check the inputs, resize each image so its shorter side is ``size`` (the maps come back
at each input's own resolution), group images of equal working size into batches, classify each batch
(top-k and the default top-1 target), run the method once per batch, normalise each raw map to [0, 1]
and resize it back to the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.classify import Prediction
from service.core.classify import top_k as top_k_predictions
from service.core.errors import InvalidArgument
from service.core.imageio import resize_to
from service.core.labels import resolve_class
from service.core.progress import CancelToken, ProgressCallback
from service.core.saliency.base import Method, Ticker, parse_options
from service.core.saliency.registry import get_method
from service.core.tensors import images_to_batch

Target = int | str | None


@dataclass
class SaliencyResult:
    maps: list[np.ndarray]  # float32 (H, W) in [0, 1] at each input's resolution
    targets: list[int]  # the class explained for each image
    predictions: list[list[Prediction]]  # top-k of each image, highest first
    method: str = ""


def check_images(images: Sequence[np.ndarray]) -> None:
    if not images:
        raise InvalidArgument("Expected at least one image.")
    for i, im in enumerate(images):
        if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            shape = getattr(im, "shape", None)
            raise InvalidArgument(f"Image {i} must be an (H, W, 3) uint8 array, got {shape}.")
        if min(im.shape[:2]) < 8:
            raise InvalidArgument(
                f"Image {i} is {im.shape[1]}x{im.shape[0]}; saliency needs at least 8x8 pixels."
            )


def resolve_targets(target: Target | Sequence[Target], n: int, labels: list[str]) -> list[int | None]:
    """One class index (or None = top-1) per image, from one target for all or a list of n."""
    if isinstance(target, list | tuple):
        if len(target) != n:
            raise InvalidArgument(f"Got {len(target)} targets for {n} images.")
        return [None if t is None else resolve_class(t, labels) for t in target]
    if target is None:
        return [None] * n
    if not isinstance(target, int | str):
        raise InvalidArgument(f"A target is a class index or a label name, got {type(target).__name__}.")
    return [resolve_class(target, labels)] * n


def working_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(h, w) with the shorter side scaled to ``size`` (aspect kept); the input size when None."""
    if size is None:
        return height, width
    s = size / min(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def normalise(raw: Tensor, method: Method) -> Tensor:
    """Raw maps (B, h, w) -> [0, 1] per map, following the method's normalisation rule."""
    flat = raw.flatten(1).float()
    # RISE ("minmax") maps are all positive with a large offset; the others keep their positive part.
    flat = flat - flat.amin(dim=1, keepdim=True) if method.normalisation == "minmax" else flat.clamp(min=0)
    if method.clip_percentile is not None:
        # kthvalue, not quantile: torch.quantile refuses tensors above 16M elements (large batches/images).
        k = max(1, min(flat.shape[1], round(flat.shape[1] * method.clip_percentile / 100.0)))
        top = flat.kthvalue(k, dim=1, keepdim=True).values
        top = torch.maximum(top, flat.amax(dim=1, keepdim=True) * 1e-6)  # sparse maps: fall back to max
    else:
        top = flat.amax(dim=1, keepdim=True)
    out = torch.where(top > 0, flat / torch.where(top > 0, top, torch.ones_like(top)), torch.zeros_like(flat))
    return out.clamp(0, 1).view_as(raw)


def resize_maps(maps: Tensor, height: int, width: int) -> Tensor:
    """(B, h, w) -> (B, height, width), bilinear (antialiased when shrinking)."""
    if maps.shape[-2:] == (height, width):
        return maps
    shrink = height < maps.shape[-2] or width < maps.shape[-1]
    out = F.interpolate(
        maps.unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False, antialias=shrink
    )
    return out.squeeze(1).clamp(0, 1)


def attribute(
    backbone: Backbone,
    x: Tensor,
    method: str,
    targets: Tensor,
    params: Mapping[str, object] | None = None,
    cancel: CancelToken | None = None,
    progress: ProgressCallback | None = None,
) -> Tensor:
    """Raw (unnormalised, signed) maps (B, h, w) of one batch ``x`` (B, 3, H, W) in [0, 1].

    For cross-checks and post-processing; ``h, w`` is the method's own resolution (the tap's for Grad-CAM).
    """
    m = get_method(method)
    options = parse_options(m.options, params, method)
    ticker = Ticker(m.ticks(options, x.shape[0], x.shape[2], x.shape[3]), cancel, progress, m.name)
    ticker.check()
    return m.attribute(backbone, x, targets.to(x.device), options, ticker)


def saliency_maps(
    backbone: Backbone,
    x: Tensor,
    method: str,
    targets: Tensor,
    params: Mapping[str, object] | None = None,
    cancel: CancelToken | None = None,
) -> Tensor:
    """[0, 1] maps (B, H, W) at the resolution of the batch ``x``."""
    raw = attribute(backbone, x, method, targets, params, cancel)
    return resize_maps(normalise(raw, get_method(method)), x.shape[2], x.shape[3])


def explain(
    backbone: Backbone,
    images: list[np.ndarray],
    method: str,
    target: Target | Sequence[Target] = None,
    params: Mapping[str, object] | None = None,
    top_k: int = 5,
    cancel: CancelToken | None = None,
    progress: ProgressCallback | None = None,
    *,
    size: int | None = 224,
    batch_size: int = 16,
) -> SaliencyResult:
    """Saliency maps of ``images`` ((H, W, 3) uint8, sizes may differ) for ``method``.

    ``target``: a class index or label name for every image, a list with one per image, or None for each
    image's top-1 class. ``params``: the method's parameters (see its options dataclass). ``size``: the
    shorter side the network sees (None: native resolution). Images of equal working size share a batch of
    at most ``batch_size``.
    """
    m = get_method(method)
    options = parse_options(m.options, params, method)
    check_images(images)
    if not 1 <= top_k <= 1000:
        raise InvalidArgument(f"top_k must be between 1 and 1000, got {top_k}.")
    if size is not None and not 16 <= size <= 4096:
        raise InvalidArgument(f"size must be between 16 and 4096 pixels, got {size}.")
    if batch_size < 1:
        raise InvalidArgument(f"batch_size must be at least 1, got {batch_size}.")
    wanted = resolve_targets(target, len(images), backbone.labels)
    shapes = [working_size(im.shape[0], im.shape[1], size) for im in images]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(shape, []).append(i)
    batches = [idx[j : j + batch_size] for idx in groups.values() for j in range(0, len(idx), batch_size)]
    total = sum(m.ticks(options, len(b), *shapes[b[0]]) for b in batches)
    ticker = Ticker(total, cancel, progress, m.name)
    ticker.check()

    maps: list[np.ndarray | None] = [None] * len(images)
    targets: list[int] = [0] * len(images)
    preds: list[list[Prediction]] = [[] for _ in images]
    for batch in batches:
        h, w = shapes[batch[0]]
        x = images_to_batch([np.array(resize_to(images[i], w, h)) for i in batch], backbone.device)
        with torch.no_grad():
            logits = backbone(x)
        top1 = logits.argmax(dim=1).tolist()
        chosen: list[int] = []
        for n, i in enumerate(batch):
            want = wanted[i]
            chosen.append(int(top1[n]) if want is None else want)
        raw = m.attribute(backbone, x, torch.tensor(chosen, device=x.device), options, ticker)
        norm = resize_maps(normalise(raw.detach(), m), h, w)
        for n, (i, p) in enumerate(
            zip(batch, top_k_predictions(logits, backbone.labels, top_k), strict=True)
        ):
            im_h, im_w = images[i].shape[:2]
            maps[i] = resize_maps(norm[n : n + 1], im_h, im_w)[0].cpu().numpy().astype(np.float32)
            targets[i] = chosen[n]
            preds[i] = p
    return SaliencyResult([mp for mp in maps if mp is not None], targets, preds, m.name)
