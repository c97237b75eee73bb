"""Sanity check by cascading model randomisation.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim 2018, "Sanity Checks for Saliency Maps"
(arXiv:1810.03292): re-initialise the network's layers from the top (logits) down, cumulatively, and
compare each map with the map of the trained network. A method whose map barely changes when the weights
that make the decision are destroyed explains the input (edges), not the model. The similarity reported
is the Spearman rank correlation of the two [0, 1] maps (1 = same ranking of pixels).

The randomised networks are deep copies: the shared backbone from ``get_backbone`` is never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.imageio import resize_to
from service.core.progress import CancelToken, ProgressCallback, ProgressClock
from service.core.saliency.api import check_images, saliency_maps, working_size
from service.core.saliency.registry import parse_method_spec
from service.core.tensors import images_to_batch

# Cumulative numbers of conv/linear layers re-initialised, from the top. On EfficientNet-Lite0 these are:
# the classifier; + the 1x1 head conv; + block 15 (expand, depthwise, project); + blocks 11-14.
DEFAULT_STAGES: tuple[int, ...] = (1, 2, 5, 17)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv and linear layers in forward (registration) order, with their qualified names."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def randomised_copy(backbone: Backbone, top_layers: int, seed: int = 0) -> Backbone:
    """A deep copy of ``backbone`` whose last ``top_layers`` conv/linear layers have fresh random weights.

    Layers are re-initialised with PyTorch's default initialiser (``reset_parameters``), as Adebayo et al.
    re-initialise with the training-time initialisation; BatchNorm statistics are left as they are.
    """
    layers = weight_layers(backbone)
    if not 1 <= top_layers <= len(layers):
        raise InvalidArgument(f"top_layers must be between 1 and {len(layers)}, got {top_layers}.")
    clone = copy.deepcopy(backbone)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _, module in weight_layers(clone)[-top_layers:]:
            module.reset_parameters()  # type: ignore[operator]
    return clone.eval().requires_grad_(False)


def stage_label(backbone: Backbone, top_layers: int) -> str:
    """Name of the lowest layer re-initialised at a stage, e.g. ``_blocks.15._expand_conv``."""
    return weight_layers(backbone)[-top_layers][0]


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as ``scipy.stats.rankdata``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0
    return average[inverse.ravel()]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally sized arrays (0 when either is constant)."""
    ra, rb = rank(np.asarray(a, np.float64).ravel()), rank(np.asarray(b, np.float64).ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


@dataclass
class SanityRow:
    method: str
    correlations: list[float]  # mean Spearman correlation over the images, one per stage


def cascading_randomisation(
    backbone: Backbone,
    images: Sequence[np.ndarray],
    methods: Sequence[str],
    stages: Sequence[int] = DEFAULT_STAGES,
    size: int = 224,
    params: Mapping[str, Mapping[str, object]] | None = None,
    seed: int = 0,
    cancel: CancelToken | None = None,
    progress: ProgressCallback | None = None,
) -> list[SanityRow]:
    """Spearman correlation between each method's map on the trained and on the randomised networks.

    The class explained is the trained network's top-1 for each image, on every randomised network too.
    """
    check_images(images)
    specs = [parse_method_spec(m) for m in methods]
    if list(stages) != sorted(set(stages)):
        raise InvalidArgument(f"stages must be increasing layer counts, got {list(stages)}.")
    batches = []
    for image in images:
        h, w = working_size(image.shape[0], image.shape[1], size)
        x = images_to_batch([np.array(resize_to(image, w, h))], backbone.device)
        with torch.no_grad():
            batches.append((x, backbone(x).argmax(dim=1)))
    models = [backbone, *(randomised_copy(backbone, n, seed) for n in stages)]
    clock = ProgressClock(len(models) * len(methods))
    maps: list[list[list[np.ndarray]]] = []  # [model][method][image]
    for k, model in enumerate(models):
        per_method = []
        for j, ((name, spec_params), label) in enumerate(zip(specs, methods, strict=True)):
            merged = {**spec_params, **((params or {}).get(label) or {})}
            per_method.append(
                [saliency_maps(model, x, name, t, merged, cancel)[0].cpu().numpy() for x, t in batches]
            )
            if progress is not None:
                progress(clock.report(k * len(methods) + j + 1, stage=f"network {k}/{len(stages)}: {label}"))
        maps.append(per_method)
    rows = []
    for j, label in enumerate(methods):
        corr = [
            float(np.mean([spearman(a, b) for a, b in zip(maps[0][j], maps[k][j], strict=True)]))
            for k in range(1, len(models))
        ]
        rows.append(SanityRow(label, corr))
    return rows
