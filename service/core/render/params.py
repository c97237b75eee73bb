"""Image parameterisations for feature visualisation: a Fourier basis with decorrelated colour.

Olah, Mordvintsev & Schubert (2017), "Feature Visualization", Distill (doi:10.23915/distill.00007), and
Mordvintsev, Pezzotti, Schubert & Olah (2018), "Differentiable Image Parameterizations", Distill
(doi:10.23915/distill.00012). Plain gradient ascent on pixels follows the network's gradient, which is
dominated by high frequencies, and ends in faint, noisy patterns. Optimising the image's spectrum instead,
with every frequency scaled by 1/|f| so all of them start with equal energy per octave, and mixing the
three channels through the square root of natural images' colour covariance, whitens the gradient: the
optimiser takes steps of comparable size at every scale and in every colour direction, and the result
has the structure and saturation of a natural image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

# Square root of the colour covariance of ImageNet images (RGB, from an SVD; the matrix the Distill
# articles use), normalised by its largest column norm so a unit step in the decorrelated space is at
# most a unit step in any colour channel.
_COLOR_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]],
    dtype=torch.float32,
)
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class FourierImage(nn.Module):
    """A (1, 3, H, W) image in [0, 1] as ``sigmoid(colour_mix(irfft2(spectrum * 1/|f|^decay)))``.

    The only parameter is the spectrum (real and imaginary parts), drawn from a seeded normal with a small
    ``std`` so the first image is a nearly uniform grey. Optimise ``parameters()`` with Adam (about 0.05).
    """

    scale: Tensor
    color: Tensor

    def __init__(
        self,
        height: int,
        width: int,
        seed: int = 0,
        std: float = 0.01,
        decay: float = 1.0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.height, self.width = height, width
        fy = torch.fft.fftfreq(height)[:, None]
        fx = torch.fft.rfftfreq(width)[None, :]
        freq = torch.sqrt(fx * fx + fy * fy)
        # 1/|f| (the DC term gets the lowest non-zero frequency's scale), times sqrt(H*W): with the inverse
        # FFT's 1/(H*W) this is the orthonormal transform, so pixel values do not depend on the size.
        scale = 1.0 / freq.clamp_min(1.0 / max(height, width)) ** decay
        self.register_buffer("scale", (scale * math.sqrt(height * width))[None, None].to(device))
        self.register_buffer("color", _COLOR_SQRT.to(device))
        g = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same seed, the same start anywhere
        shape = (1, 3, height, width // 2 + 1, 2)
        self.spectrum = nn.Parameter((torch.randn(shape, generator=g) * std).to(device))

    def forward(self) -> Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="backward") / 4.0
        x = torch.einsum("ij,bjhw->bihw", self.color, x)
        return torch.sigmoid(x)
