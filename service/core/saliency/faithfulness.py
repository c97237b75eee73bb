"""Faithfulness of saliency maps: deletion and insertion curves and their areas.

* Deletion (Samek, Binder, Montavon, Lapuschkin & Müller 2017, "Evaluating the Visualization of What a Deep
  Neural Network Has Learned", arXiv:1509.06321): replace pixels in ``steps`` equal steps, most relevant
  first (MoRF) or least relevant first (LeRF), and record the explained class's probability. A faithful
  map makes the MoRF curve fall fast and the LeRF curve stay high, so the MoRF/LeRF area ratio is low.
* Insertion (Petsiuk, Das & Saenko 2018, RISE, arXiv:1806.07421): start from the degraded image and put
  the original pixels back, most relevant first; a faithful map makes the curve rise fast (high area).

With the same blurred copy, insertion of the top k % of pixels is the image that LeRF deletion reaches after
removing the bottom (100 - k) %, so the insertion area equals the LeRF area; the report computes it once.

Pixels are replaced by a heavily blurred copy of the image rather than black: scattered black pixels
destroy recognition on this net almost at once whatever their order, which would make every map, even a
random one, look faithful. Ties in a map are broken by a fixed random jitter, not by raster order.

Baselines: a spatially smoothed random map (``random_map``) and a centred Gaussian blob (``centre_map``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.imageio import resize_to
from service.core.progress import CancelToken, ProgressCallback, ProgressClock
from service.core.saliency.api import check_images, saliency_maps, working_size
from service.core.saliency.base import check_range, chunks
from service.core.saliency.blur import HEAVY_BLUR, gaussian_blur, heavy_blur
from service.core.saliency.registry import parse_method_spec
from service.core.tensors import images_to_batch

Order = Literal["morf", "lerf", "insertion"]
BASELINE_MAPS = ("random", "centre")


@dataclass(frozen=True)
class CurveOptions:
    steps: int = 20  # equal steps from 0 % to 100 % of the pixels
    blur: float = HEAVY_BLUR  # replacement: Gaussian blur, sigma = blur * shorter side
    batch_size: int = 32  # curve images per forward

    def __post_init__(self) -> None:
        check_range("steps", self.steps, 1, 1000)
        check_range("blur", self.blur, 0.0, 1.0)
        check_range("batch_size", self.batch_size, 1)


def pixel_ranks(saliency: Tensor, seed: int = 0) -> Tensor:
    """Rank of every pixel, 0 = most relevant, (B, H, W) -> (B, H*W); ties broken by a fixed jitter."""
    flat = saliency.flatten(1).float()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    jitter = torch.rand(flat.shape[1], generator=gen).to(flat.device) * 1e-6
    order = torch.argsort(flat + jitter, dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


@torch.no_grad()
def curves(
    backbone: Backbone,
    x: Tensor,
    saliency: Tensor,
    targets: Tensor,
    order: Order,
    options: CurveOptions = CurveOptions(),
) -> Tensor:
    """Probability of each target after 0, 1/steps, ..., 1 of the pixels were changed: (B, steps + 1).

    ``x`` (B, 3, H, W) in [0, 1], ``saliency`` (B, H, W). MoRF/LeRF replace pixels of ``x`` by the blurred
    copy; insertion starts from the blurred copy and restores pixels of ``x``, most relevant first.
    """
    b, c, h, w = x.shape
    blurred = heavy_blur(x, options.blur)
    ranks = pixel_ranks(saliency)
    if order == "lerf":
        ranks = h * w - 1 - ranks  # the exact reverse of MoRF's order, tie-breaking included
    ranks = ranks.view(b, 1, h, w)
    counts = [round(k * h * w / options.steps) for k in range(options.steps + 1)]
    source, fill = (blurred, x) if order == "insertion" else (x, blurred)
    probs = torch.empty((options.steps + 1, b), device=x.device)
    for part in chunks(options.steps + 1, max(1, options.batch_size // b)):
        n = torch.tensor([counts[k] for k in part], device=x.device).view(-1, 1, 1, 1, 1)
        changed = ranks.unsqueeze(0) < n  # (k, B, 1, H, W)
        batch = torch.where(changed, fill.unsqueeze(0), source.unsqueeze(0)).view(-1, c, h, w)
        p = torch.softmax(backbone(batch), dim=1)
        probs[part.start : part.stop] = p.gather(1, targets.repeat(len(part)).view(-1, 1)).view(len(part), b)
    return probs.T.contiguous()


def area(curve: Tensor) -> Tensor:
    """Area under curves sampled at equal steps on [0, 1] (trapezoid rule), (B, K+1) -> (B,)."""
    steps = curve.shape[1] - 1
    return (curve.sum(dim=1) - 0.5 * (curve[:, 0] + curve[:, -1])) / steps


def random_map(height: int, width: int, seed: int = 0, smooth: float = 1 / 16) -> Tensor:
    """Spatially smoothed random map (H, W) in [0, 1]: white noise blurred with sigma = smooth * shorter side."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn((1, 1, height, width), generator=gen)
    m = gaussian_blur(noise, smooth * min(height, width))[0, 0]
    return (m - m.min()) / (m.max() - m.min()).clamp(min=1e-12)


def centre_map(height: int, width: int, spread: float = 0.25) -> Tensor:
    """A centred Gaussian blob (H, W) in [0, 1], sigma = spread * side along each axis."""
    ys = (torch.arange(height, dtype=torch.float32) - (height - 1) / 2) / (spread * height)
    xs = (torch.arange(width, dtype=torch.float32) - (width - 1) / 2) / (spread * width)
    return torch.exp(-0.5 * (ys.view(-1, 1) ** 2 + xs.view(1, -1) ** 2))


@dataclass
class FaithfulnessRow:
    method: str
    morf: float  # mean area under the MoRF deletion curve (lower is better)
    lerf: float  # mean area under the LeRF deletion curve (higher is better)
    insertion: float  # mean area under the insertion curve (higher is better)
    per_image_ratio: list[float] = field(default_factory=list)  # MoRF / LeRF area of each image

    @property
    def ratio(self) -> float:
        """MoRF area / LeRF area of the means (lower is better; 1 = no better than chance)."""
        return self.morf / self.lerf if self.lerf > 0 else float("inf")


def evaluate_faithfulness(
    backbone: Backbone,
    images: Sequence[np.ndarray],
    methods: Sequence[str],
    size: int = 224,
    options: CurveOptions = CurveOptions(),
    params: Mapping[str, Mapping[str, object]] | None = None,
    baselines: Sequence[str] = BASELINE_MAPS,
    cancel: CancelToken | None = None,
    progress: ProgressCallback | None = None,
) -> list[FaithfulnessRow]:
    """Deletion (MoRF, LeRF) and insertion areas of each method (and baseline map) over ``images``.

    ``methods`` are names or variants such as ``"integrated_gradients[baseline=blur]"``; ``params`` maps a
    method entry to extra parameters.
    Each image is resized so its shorter side is ``size``; the explained class is the model's top-1.
    """
    check_images(images)
    for spec in methods:
        parse_method_spec(spec)  # fail before any work on a bad name
    for name in baselines:
        if name not in BASELINE_MAPS:
            raise InvalidArgument(f"Unknown baseline map {name!r}; use {', '.join(BASELINE_MAPS)}.")
    names = [*methods, *baselines]
    scores: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    clock = ProgressClock(len(images) * len(names))
    for i, image in enumerate(images):
        h, w = working_size(image.shape[0], image.shape[1], size)
        x = images_to_batch([np.array(resize_to(image, w, h))], backbone.device)
        with torch.no_grad():
            target = backbone(x).argmax(dim=1)
        for j, name in enumerate(names):
            if cancel is not None:
                cancel.check()
            sal = _baseline(name, h, w, i).unsqueeze(0).to(x.device) if name in baselines else None
            if sal is None:
                method, spec_params = parse_method_spec(name)
                merged = {**spec_params, **((params or {}).get(name) or {})}
                sal = saliency_maps(backbone, x, method, target, merged, cancel)
            morf = curves(backbone, x, sal, target, "morf", options)
            lerf = curves(backbone, x, sal, target, "lerf", options)
            # With the same blurred copy, inserting the top k % gives the image LeRF reaches after deleting
            # the bottom (100 - k) %: the insertion curve is the LeRF curve reversed (a test checks it).
            row = [float(area(c)[0]) for c in (morf, lerf, lerf.flip(1))]
            scores[name].append((row[0], row[1], row[2]))
            if progress is not None:
                progress(clock.report(i * len(names) + j + 1, stage=f"image {i + 1}/{len(images)}: {name}"))
    return [_row(n, scores[n]) for n in names]


def _baseline(name: str, h: int, w: int, seed: int) -> Tensor:
    return random_map(h, w, seed) if name == "random" else centre_map(h, w)


def _row(name: str, values: list[tuple[float, float, float]]) -> FaithfulnessRow:
    arr = np.asarray(values, dtype=np.float64)
    ratios = [morf / lerf if lerf > 0 else float("inf") for morf, lerf, _ in values]
    return FaithfulnessRow(
        name, float(arr[:, 0].mean()), float(arr[:, 1].mean()), float(arr[:, 2].mean()), ratios
    )
