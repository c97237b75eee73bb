"""``johnson2``: the Johnson transform net (Johnson, Alahi & Fei-Fei 2016, arXiv:1603.08155; ``johnson.py``)
with ``mobile2``'s cure for droplets and its x2 bilinear upsampling.

Trained with the fast-style recipe (identity warm start, rolled loss, content weight 3, grid penalty 3),
``johnson`` paints the same saturated colour droplets as ``mobile`` did: starry_night at 1260 CPU s
scored 33 droplets per mille and structure 0.33, with blobs of flat yellow and green a fifth of the image
wide (docs/training/long_runs.md, phase 20). Karras et al. 2019 (StyleGAN2, arXiv:1912.04958) trace such
blobs to instance normalisation: a net can put one strong local spike in a feature map to control the
statistics the norm divides by. So, as in ``mobile2``:

* instance norm in the three encoder convolutions only (the net still sees a contrast-normalised photo);
  the five residual blocks and the decoder have none;
* each residual branch ends in a zero-initialised convolution (Goyal et al. 2017, arXiv:1706.02677), so
  the un-normalised body starts as the identity and trains stably;
* x2 bilinear upsampling before each decoder convolution instead of nearest, which is itself a period-2
  staircase the next conv has to undo (Sugawara et al. 2018, arXiv:1806.02658).

Layout and cost are Johnson's: 9x9 conv 3->32, 3x3/2 ->64, 3x3/2 ->128, five residual blocks at 128
channels, two (bilinear x2, 3x3 conv) stages ->64 ->32, 9x9 conv ->3; about 1.7 M parameters. It is served
under the same ``<style>-johnson`` name as the net it replaces.
"""

from __future__ import annotations

from torch import Tensor, nn

from service.core.stylize.nets import TransformNet, register_net
from service.core.stylize.nets.johnson import ConvLayer
from service.core.stylize.nets.mobile2 import BilinearUp2


def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, padding_mode="reflect")


class ResidualNoNorm(nn.Module):
    """x + conv(ReLU(conv(x))), the last conv starting at zero (no normalisation)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        last = _conv(ch, ch)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # the convs have a bias
        self.body = nn.Sequential(_conv(ch, ch), nn.ReLU(inplace=True), last)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Johnson2Net(TransformNet):
    arch = "johnson2"
    total_stride = 4

    def __init__(self, blocks: int = 5) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            ConvLayer(3, 32, 9),
            ConvLayer(32, 64, 3, stride=2),
            ConvLayer(64, 128, 3, stride=2),
        )
        self.body = nn.Sequential(*[ResidualNoNorm(128) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            BilinearUp2(),
            _conv(128, 64),
            nn.ReLU(inplace=True),
            BilinearUp2(),
            _conv(64, 32),
            nn.ReLU(inplace=True),
            _conv(32, 3, 9),
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) in [0, 255], H and W divisible by 4
        h = self.encoder(x / 127.5 - 1.0)
        return self.decoder(self.body(h)) * 127.5 + 127.5


@register_net("johnson2")
def johnson2() -> TransformNet:
    return Johnson2Net()
