"""A training penalty on periodic patterns at 2, 4 and 8 px: the crosshatch the grid score measures.

The ablation (docs/training/ablation.md) found the crosshatch of the fast nets at period 2 and 4 px even with
an architecture that has no pixel shuffle and no nearest upsampling and with the loss seeing randomly rolled
images: the perceptual loss itself rewards it. EfficientNet-Lite0's stride-2 stem answers a period-2 tone as
texture, so a feed-forward net learns one cheap periodic pattern that lowers the Gram distance of the
shallow taps everywhere (Odena, Dumoulin and Olah 2016, "Deconvolution and Checkerboard Artifacts",
Distill, on artifacts that come from the gradients of a strided network). A Gatys render, optimised per
image, does not converge to it.

The penalty is the grid score (``measures.grid``) made differentiable and applied per training crop: the
power spectrum of the grey render (mean removed, 2-D Hann window), and at each of the frequencies of period
2, 4 and 8 px along the axes and the diagonals, the power summed over the 3x3 bins around it against the
median power of the ring at the same radius (taken without gradient, as a reference level). The excess
``log10(peak / ring) - margin``, where positive, is averaged over the frequencies and the batch. A natural
photo's spectrum is smooth there (``margin`` 0.5 allows the threefold excess a photo's own edges give), so
the term is zero for a render without a periodic pattern and only the pattern is pushed down, not the
painting's strokes at other frequencies.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

PERIODS = (2, 4, 8)
_LUMA = (0.299, 0.587, 0.114)


@functools.lru_cache(maxsize=8)
def _geometry(h: int, w: int, device: str) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """The 2-D Hann window, and per probed frequency (flat indices of its 3x3 peak bins, flat indices of
    its ring) for an h x w crop."""
    window = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    fy, fx = torch.fft.fftfreq(h)[:, None], torch.fft.fftfreq(w)[None, :]
    radius = torch.sqrt(fy**2 + fx**2)
    probes = []
    for p in PERIODS:
        if 3 * p > min(h, w):
            continue
        f = 1.0 / p
        for dy, dx in ((0.0, f), (f, 0.0), (f, f), (f, -f)):
            iy, ix = round(dy * h) % h, round(dx * w) % w
            offsets = torch.arange(-1, 2)
            peak = (((iy + offsets) % h)[:, None] * w + ((ix + offsets) % w)[None, :]).reshape(-1)
            r = float(radius[iy, ix])
            ring = (torch.abs(radius - r) <= 1.5 / min(h, w)).reshape(-1)
            near = torch.zeros(h * w, dtype=torch.bool)
            near[peak] = True
            probes.append((peak.to(device), torch.nonzero(ring & ~near).reshape(-1).to(device)))
    return window.to(device), probes


def grid_penalty(images: Tensor, margin: float = 0.5) -> Tensor:
    """Mean positive excess over ``margin`` of log10(peak / ring median) at periods 2, 4, 8 px for a
    (B, 3, H, W) batch in [0, 1]; a scalar, zero when no probed frequency stands out."""
    b, _, h, w = images.shape
    luma = torch.tensor(_LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    g = (images.float() * luma.float()).sum(1)
    g = g - g.mean(dim=(1, 2), keepdim=True)
    window, probes = _geometry(h, w, str(images.device))
    if not probes:
        return images.new_zeros((), dtype=torch.float32)
    power = torch.fft.fft2(g * window).abs().square().reshape(b, -1)
    eps = 1e-10 + 1e-12 * power.detach().mean()
    excess = []
    for peak, ring in probes:
        reference = power[:, ring].detach().median(dim=1).values
        ratio = torch.log10(power[:, peak].sum(1) / 9 + eps) - torch.log10(reference + eps)
        excess.append(torch.relu(ratio - margin))
    return torch.stack(excess).mean()
