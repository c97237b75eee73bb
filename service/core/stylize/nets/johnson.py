"""The Johnson transform network (Johnson, Alahi & Fei-Fei 2016, "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution", arXiv:1603.08155), in the variant of pytorch/examples ``fast_neural_style``:
instance normalisation (Ulyanov et al. 2016, arXiv:1607.08022) instead of batch norm, reflection padding,
and nearest-neighbour upsampling followed by a convolution instead of transposed convolutions (Odena et al.
2016, "Deconvolution and Checkerboard Artifacts").

Layout: 9x9 conv 3->32, 3x3/2 conv ->64, 3x3/2 conv ->128, five residual blocks at 128 channels,
two (nearest x2, 3x3 conv) upsamplers ->64 ->32, 9x9 conv ->3. About 1.7 M parameters, 40 GMAC at 512 px.
"""

from __future__ import annotations

from torch import Tensor, nn

from service.core.stylize.nets import TransformNet, register_net


class ConvLayer(nn.Module):
    """Reflection pad + conv (+ instance norm + ReLU unless ``last``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, last: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if not last:
            layers += [nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm; ReLU only between them (He et al. 2016 as used by Johnson)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch, affine=True),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest x2 upsample, then a 3x3 conv with instance norm and ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = ConvLayer(cin, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))


class JohnsonNet(TransformNet):
    arch = "johnson"
    total_stride = 4

    def __init__(self, blocks: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(3, 32, 9),
            ConvLayer(32, 64, 3, stride=2),
            ConvLayer(64, 128, 3, stride=2),
            *[ResidualBlock(128) for _ in range(blocks)],
            UpsampleConv(128, 64),
            UpsampleConv(64, 32),
            ConvLayer(32, 3, 9, last=True),
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) in [0, 255], H and W divisible by 4
        # Centre the input so the first conv starts near a sensible operating point; the output head is
        # linear and learns the 0..255 range itself (offset by 127.5 to start at mid-grey).
        return self.body(x / 127.5 - 1.0) * 127.5 + 127.5


@register_net("johnson")
def johnson() -> TransformNet:
    return JohnsonNet()
