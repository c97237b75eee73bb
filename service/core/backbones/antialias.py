"""An anti-aliased copy of a frozen loss network: the stride-2 convolutions of EfficientNet-Lite0 run at
stride 1, and their activations are low-pass filtered before they are subsampled (Zhang 2019, "Making
Convolutional Networks Shift-Invariant Again", ICML, arXiv:1904.11486: ConvBlurPool, conv at stride 1,
ReLU, then a blur at stride 2; the "Tri-3" filter [1, 2, 1]).

Why, for a perceptual loss: a stride-2 layer samples its input at one phase, so a period-2 pattern in the
transform net's output reaches the deeper taps as a shift that depends on where it sits on the grid, and
the Gram terms can reward it (the shipped nets' crosshatch lowered the shallow taps' Gram distance:
docs/training/ablation.md). With the blur the features are nearly the same at every phase, and the
pattern hardly reaches them at all (``tests/test_antialias.py``). The weights are Lite0's own, unchanged;
the loss's targets (the painting's Grams, the photo's content features) go through the same copy, so they
stay consistent. The evaluation keeps the plain network, whose features on painted texture differ from
the copy's: a net trained against the copy matches it and not Lite0 (docs/training/long_runs.md, phase 16).
"""

from __future__ import annotations

import math
import weakref
from copy import deepcopy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument

# One copy per backbone: a multi-style run builds one loss per style.
_COPIES: weakref.WeakKeyDictionary[Backbone, dict[str, Backbone]] = weakref.WeakKeyDictionary()


class BlurSubsample(nn.Module):
    """A depthwise [1, 2, 1] x [1, 2, 1] / 16 blur at stride 2, with the padding TF "SAME" gives a 3x3
    stride-2 convolution (the odd pixel on the right / bottom), reflected, so each output sits where the
    plain network's would and the borders are not darkened."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous())
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        pad_h = max((math.ceil(ih / 2) - 1) * 2 + 3 - ih, 0)
        pad_w = max((math.ceil(iw / 2) - 1) * 2 + 3 - iw, 0)
        mode = "reflect" if min(ih, iw) > 2 else "replicate"  # reflect needs more pixels than the pad
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2], mode=mode)
        return F.conv2d(x, self.get_buffer("kernel").to(x.dtype), stride=2, groups=self.channels)


ANTIALIAS_MODES = ("all", "deep")


def antialiased(backbone: Backbone, mode: str = "all") -> Backbone:
    """A frozen copy of ``backbone.for_loss()`` with stride-2 convolutions made ConvBlurPools.

    Only EfficientNet-Lite0 is supported (its stem and the depthwise convolutions of blocks 1, 3, 5 and
    11 are its stride-2 layers); the copy's taps keep their names and shapes. ``mode="all"`` converts all
    five; ``"deep"`` leaves the stem as it is, so the shallow taps stay Lite0's (with every layer blurred a
    run scored a 4x worse style ratio against the plain net; docs/training/long_runs.md, phase 16). The
    stem at full resolution is most of the extra cost: 1.33x a training step for "all", 1.15x for "deep".
    """
    if mode not in ANTIALIAS_MODES:
        raise InvalidArgument(f"antialias mode must be one of {', '.join(ANTIALIAS_MODES)}, got {mode!r}.")
    from service.core.backbones.efficientnet_lite0 import EfficientNetLite0, MBConvBlock

    if not isinstance(backbone, EfficientNetLite0):
        raise InvalidArgument(f"The anti-aliased loss network needs efficientnet_lite0, not {backbone.name}.")
    cached = _COPIES.get(backbone, {}).get(mode)
    if cached is not None:
        return cached
    net = deepcopy(backbone.for_loss())

    def blur_after(owner: nn.Module, conv_name: str, act_name: str, tap: str) -> None:
        conv = getattr(owner, conv_name)
        conv.stride = (1, 1)
        act = nn.Sequential(getattr(owner, act_name), BlurSubsample(conv.out_channels))
        setattr(owner, act_name, act)
        net._tap_modules[tap] = act  # hooks on the tap see what the loss sees

    if mode == "all":
        blur_after(net, "_conv_stem", "stem_act", "stem")
    for i, block in enumerate(net._blocks):
        assert isinstance(block, MBConvBlock)
        if block._depthwise_conv.stride == (2, 2):
            blur_after(block, "_depthwise_conv", "dw_act", f"block{i}.dw")
    net.folded = True  # for_loss() of the copy is the copy itself
    _COPIES.setdefault(backbone, {})[mode] = net.eval().requires_grad_(False)
    return net
