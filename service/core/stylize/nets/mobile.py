"""``mobile``: a small transform network for phones and CPUs.

It keeps the recipe of Johnson et al. 2016 (arXiv:1603.08155: encoder, residual body, upsampling decoder,
instance norm) but does nearly all work at 1/4 resolution with separable convolutions; the Johnson net
runs dense 128-channel 3x3 convs at 1/4 and 64/32-channel convs at 1/2 and full resolution (40 GMAC):

* stem: space-to-depth by 4 (``PixelUnshuffle``, 3 -> 48 channels at 1/4 resolution) and one 3x3 conv to
  ``width`` channels, so nothing but a reshuffle runs at full resolution;
* body: ``blocks`` depthwise-separable residual blocks (MobileNet, Howard et al. 2017, arXiv:1704.04861:
  3x3 depthwise + 1x1 pointwise, twice per block) at 1/4 resolution;
* decoder: a 1x1 conv to 32 channels, nearest x2 and a depthwise-separable conv at 1/2 resolution
  (upsample-then-conv avoids checkerboard artefacts, Odena et al. 2016), then a 3x3 conv to 12 channels
  and depth-to-space by 2 (``PixelShuffle``, Shi et al. 2016, arXiv:1609.05158) to full-resolution RGB.

About 0.08 M parameters; 1.56 GMAC at 512 px against 40 GMAC for ``johnson``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from service.core.stylize.nets import TransformNet, register_net


def _norm_act(ch: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(ch, affine=True), nn.ReLU(inplace=True)]


class SeparableConv(nn.Module):
    """3x3 depthwise + 1x1 pointwise conv.

    Reflection padding, as everywhere in Johnson et al.'s net: the first version zero-padded here, and
    with ten such convolutions at 1/4 resolution the zeros reached 20-40 px into the image and drew a
    dark frame around every stylised photo (a flat grey input came out with a different border).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, padding_mode="reflect", groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.dw(x))


class SeparableResidual(nn.Module):
    """x + IN(sep(ReLU(IN(sep(x))))): the Johnson residual block with separable convolutions."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            SeparableConv(ch, ch),
            *_norm_act(ch),
            SeparableConv(ch, ch),
            nn.InstanceNorm2d(ch, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _icnr_(conv: nn.Module, scale: int) -> None:
    """ICNR initialisation (Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution",
    arXiv:1707.02937): the ``scale**2`` sub-pixel filters of each output channel start equal, so the conv +
    pixel shuffle begins as nearest upsampling and does not start out drawing a checkerboard."""
    assert isinstance(conv, nn.Conv2d)
    n = scale * scale
    with torch.no_grad():
        base = conv.weight[::n].clone()  # (out / n, in, k, k)
        conv.weight.copy_(base.repeat_interleave(n, dim=0))
        if conv.bias is not None:
            conv.bias.copy_(conv.bias[::n].clone().repeat_interleave(n))


class MobileNet(TransformNet):
    arch = "mobile"
    total_stride = 4

    def __init__(self, width: int = 64, blocks: int = 5, dec: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.PixelUnshuffle(4),  # (B, 48, H/4, W/4): a free reshuffle instead of full-resolution convs
            nn.ReflectionPad2d(1),
            nn.Conv2d(48, width, 3),
            *_norm_act(width),
        )
        self.body = nn.Sequential(*[SeparableResidual(width) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            nn.Conv2d(width, dec, 1),  # narrow before upsampling: the resize then moves half the bytes
            nn.Upsample(scale_factor=2, mode="nearest"),
            SeparableConv(dec, dec),
            *_norm_act(dec),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dec, 12, 3),
            nn.PixelShuffle(2),  # (B, 3, H, W) from 12 channels at 1/2 resolution
        )
        _icnr_(self.decoder[-2], 2)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) in [0, 255], H and W divisible by 4
        h = self.encoder(x / 127.5 - 1.0)
        return self.decoder(self.body(h)) * 127.5 + 127.5


@register_net("mobile")
def mobile() -> TransformNet:
    return MobileNet()
