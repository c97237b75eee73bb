"""VGG16 and VGG19 (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", arXiv:1409.1556) with torchvision's architecture, loaded from a local weights file.

Nothing is downloaded: the file comes from a configured path or the torch hub cache, and a missing file
gives ``WeightsNotFound`` saying which file is expected and where to put it.

Taps follow the neural-style naming: ``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}``, then ``fc6``, ``relu6``,
``fc7``, ``relu7``, ``logits``.

``pooling="avg"`` replaces every 2x2 max pool by a 2x2 average pool with the same weights, as Gatys, Ecker &
Bethge (2016, "Image Style Transfer Using Convolutional Neural Networks", CVPR) did for their renders: the
gradient then reaches every pixel of a window instead of only its maximum, which they found gives slightly
more appealing results. Tap names are unchanged (``pool{b}`` is the average pool).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import vgg16, vgg19

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument, ModelLoadError, WeightsNotFound, quoted

# The file names torchvision's own download would create in the hub cache.
WEIGHT_FILES: dict[str, str] = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
}
# classifier index -> tap name (indices 2 and 5 are dropouts)
_HEAD_TAPS: dict[int, str] = {0: "fc6", 1: "relu6", 3: "fc7", 4: "relu7", 6: "logits"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS: tuple[str, ...] = ("max", "avg")


def hub_cache_dir() -> Path:
    """torch hub's checkpoint directory ($TORCH_HOME/hub/checkpoints, default ~/.cache/torch/...)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def _layer_names(layers: nn.Sequential) -> list[str]:
    names: list[str] = []
    block, conv = 1, 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:  # pragma: no cover - torchvision's VGG has only these three
            raise TypeError(f"unexpected layer {layer}")
    return names


class VGG(Backbone):
    input_size = 224
    default_style_taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    default_content_tap = "relu4_2"
    default_cam_tap = "relu5_3"

    def __init__(self, arch: str, pooling: str = "max") -> None:
        super().__init__()
        if arch not in WEIGHT_FILES:
            raise ValueError(f"unknown VGG arch {arch}")
        if pooling not in POOLINGS:
            raise InvalidArgument(f"Unknown pooling {quoted(pooling)}; use one of {', '.join(POOLINGS)}.")
        self.name = arch
        self.pooling = pooling
        tv = vgg16(weights=None) if arch == "vgg16" else vgg19(weights=None)
        if pooling == "avg":
            for i, layer in enumerate(tv.features):
                if isinstance(layer, nn.MaxPool2d):
                    tv.features[i] = nn.AvgPool2d(kernel_size=2, stride=2)
        for m in tv.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # in-place ReLUs would overwrite the conv taps and break hooks
        self.layers: nn.Sequential = tv.features
        self.avgpool = tv.avgpool
        self.classifier: nn.Sequential = tv.classifier
        if arch == "vgg19":
            self.default_cam_tap = "relu5_4"
        self._layer_names = _layer_names(self.layers)
        for name, layer in zip(self._layer_names, self.layers, strict=True):
            self._register_tap(name, layer)
        for idx, name in _HEAD_TAPS.items():
            self._register_tap(name, self.classifier[idx])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    mean: Tensor
    std: Tensor

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def run_taps(self, z: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        wanted = set(taps)
        out: dict[str, Tensor] = {}
        h = z
        for name, layer in zip(self._layer_names, self.layers, strict=True):
            h = layer(h)
            if name in wanted:
                out[name] = h
                if len(out) == len(wanted):
                    return out
        h = torch.flatten(self.avgpool(h), 1)
        for idx, layer in enumerate(self.classifier):
            h = layer(h)
            head_name = _HEAD_TAPS.get(idx)
            if head_name is not None and head_name in wanted:
                out[head_name] = h
                if len(out) == len(wanted):
                    return out
        return out


def expected_weights_file(arch: str, configured: str | Path | None = None) -> Path:
    """Where the weights for ``arch`` are looked for: the configured path, else the hub cache."""
    if configured:
        return Path(configured)
    return hub_cache_dir() / WEIGHT_FILES[arch]


def _not_installed(arch: str) -> str:
    # For remote callers: the file's name, not where the server looks for it (that is in the log).
    return (
        f"{arch} is not available on this server: its weights file {WEIGHT_FILES[arch]} is not installed. "
        f"The operator can install it (ATELIER_{arch.upper()}_WEIGHTS); the server log says where it is looked for."
    )


def _unusable(arch: str) -> str:
    return f"{arch} is not available on this server: its weights file cannot be loaded (see the server log)."


def load_vgg(
    arch: str, path: str | Path | None = None, device: str | torch.device = "cpu", pooling: str = "max"
) -> VGG:
    """Build torchvision's VGG16/VGG19 and load a local weights file (``weights_only=True``, ``strict=True``)."""
    p = expected_weights_file(arch, path)
    if not p.is_file():
        env = f"ATELIER_{arch.upper()}_WEIGHTS"
        raise WeightsNotFound(
            f"{arch} needs its torchvision ImageNet weights file {WEIGHT_FILES[arch]}, not found at {p}. "
            f"Put the file there, or set {env}=/path/to/{WEIGHT_FILES[arch]}.",
            public=_not_installed(arch),
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or a pickle that is not a plain state dict
        raise ModelLoadError(f"Could not read {arch} weights {p}: {exc}", public=_unusable(arch)) from None
    # torchvision names the conv stack "features"; here it is "layers" (``features`` is the tap method).
    state = {
        ("layers." + k[len("features.") :] if k.startswith("features.") else k): v for k, v in state.items()
    }
    model = VGG(arch, pooling)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"{arch} weights {p} do not match the architecture: {exc}", public=_unusable(arch)
        ) from None
    model.eval().requires_grad_(False)
    return model.to(device)
