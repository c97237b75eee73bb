"""The decoders of WCT (Li et al., NeurIPS 2017, arXiv:1705.08086): one per Lite0 tap, each trained to
turn that tap's features back into the image they came from (``train_decoder.py``), and the encoder up to
that tap as a module that exports to ONNX.

The decoder follows what the fast-style nets taught (service/core/stylize/nets/mobile2.py,
docs/training/ablation.md): no transposed convolution and no pixel shuffle (both paint a period-2/4
crosshatch, Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts"), but x2 *bilinear*
upsampling followed by a 3x3 convolution at each scale; reflection padding everywhere, so a flat feature
map decodes to a flat image, borders included; no instance norm (Karras et al. 2019 trace droplets to it),
and nothing else that normalises: the whitened-and-coloured features must decode as they are.

Widths per resolution are set by ``WIDTHS`` (stride -> channels): most of the cost is at the two finest
scales, so they are thin; ``width_scale`` multiplies them all (a lever for the training session).
"""

from __future__ import annotations

import copy
import types
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.core.arbitrary.levels import ALIGN, TAPS
from service.core.backbones import Backbone
from service.core.backbones.efficientnet_lite0 import SameConv2d
from service.core.errors import InvalidArgument

WIDTHS: dict[int, int] = {16: 128, 8: 96, 4: 64, 2: 32, 1: 16}  # output stride -> decoder channels


@dataclass(frozen=True)
class TapGeometry:
    tap: str
    channels: int
    stride: int  # input pixels per feature position


def tap_geometry(backbone: Backbone, tap: str) -> TapGeometry:
    """Channels and stride of ``tap``, measured by running the backbone on a 64 px image."""
    if tap not in TAPS:
        raise InvalidArgument(f"No decoder for tap {tap!r}; decoders exist for: {', '.join(TAPS)}.")
    with torch.no_grad():
        x = torch.zeros(1, 3, 64, 64, device=backbone.device)
        f = backbone.features(x, [tap])[tap]
    stride = 64 // int(f.shape[-1])
    if stride > ALIGN or ALIGN % stride:
        raise InvalidArgument(f"Tap {tap} has stride {stride}; decoders need a stride dividing {ALIGN}.")
    return TapGeometry(tap, int(f.shape[1]), stride)


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")


class Decoder(nn.Module):
    """Features (N, C, h, w) at one tap -> image (N, 3, h * stride, w * stride), 0..255 (not clamped)."""

    def __init__(self, channels: int, stride: int, width_scale: float = 1.0) -> None:
        super().__init__()
        if stride < 1 or stride & (stride - 1) or stride > ALIGN:
            raise InvalidArgument(f"Decoder stride must be a power of two up to {ALIGN}, got {stride}.")
        self.channels, self.stride, self.width_scale = channels, stride, width_scale

        def width(s: int) -> int:
            return max(8, round(WIDTHS[s] * width_scale))

        # 1x1 first: the deep taps are wide (480 channels), a 3x3 there would be most of the cost.
        layers: list[nn.Module] = [nn.Conv2d(channels, width(stride), 1), nn.ReLU(inplace=True)]
        layers += [_conv3(width(stride), width(stride)), nn.ReLU(inplace=True)]
        s = stride
        while s > 1:
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                _conv3(width(s), width(s // 2)),
                nn.ReLU(inplace=True),
            ]
            s //= 2
        layers += [_conv3(width(1), 3)]
        self.body = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        # Predict in 0..1 around mid-grey; x255 so the graph speaks the serving range like the style nets.
        return (self.body(features) + 0.5) * 255.0


class ServedDecoder(nn.Module):
    """The exported decoder graph: input ``features``, output ``output`` clamped to 0..255."""

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, features: Tensor) -> Tensor:
        return self.decoder(features).clamp(0.0, 255.0)


class Encoder(nn.Module):
    """Lite0 from RGB 0..255 (N, 3, H, W) up to ``tap``, as exported (input ``input``, output ``features``).

    The input is reflect-padded on the right and bottom to a multiple of ``ALIGN``, with the amounts
    computed from the input's shape so they stay symbolic in the graph: every stride-2 convolution then
    sees an even size, where TensorFlow "SAME" padding is one fixed amount, which the exporter's trace of
    ``SameConv2d`` bakes in. The features are those of the padded image, ``ceil(H / ALIGN) * ALIGN / stride``
    high; the engine pads to ``ALIGN`` itself, so it crops nothing.
    """

    def __init__(self, backbone: Backbone, tap: str) -> None:
        super().__init__()
        self.backbone, self.tap = backbone, tap

    def for_export(self) -> Encoder:
        """A copy whose SAME convolutions pad by fixed amounts: those of an even input, which is what each
        one sees after the ``ALIGN`` padding. Tracing the original would record ``ceil(h / 2)`` of the
        example as a constant inside a shape expression, and the graph would give the example's feature
        size for every input."""
        backbone = copy.deepcopy(self.backbone).cpu().eval()
        for module in backbone.modules():
            if isinstance(module, SameConv2d):
                module.forward = types.MethodType(_even_same_forward, module)  # type: ignore[method-assign]
        return Encoder(backbone, self.tap)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        pad_h = (ALIGN - h % ALIGN) % ALIGN
        pad_w = (ALIGN - w % ALIGN) % ALIGN
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
        return self.backbone.features(x / 255.0, [self.tap])[self.tap]


def _even_same_forward(self: SameConv2d, x: Tensor) -> Tensor:
    """``SameConv2d.forward`` for an even input size: TF "SAME" pads k - s in total, the odd pixel last."""
    (kh, kw), (sh, sw) = self.kernel_size, self.stride
    pad_h, pad_w = max(kh - sh, 0), max(kw - sw, 0)
    if pad_h or pad_w:
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
    return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
