"""Grid score: how strongly a render shows a periodic pattern at 2, 4 or 8 px (a checkerboard or crosshatch).

Transposed convolutions, pixel shuffles and nearest-neighbour upsampling whose kernels do not divide evenly
leave a periodic pattern at the upsampling stride and its multiples (Odena, Dumoulin and Olah 2016,
"Deconvolution and Checkerboard Artifacts", Distill; Aitken et al. 2017, arXiv:1707.02937). In the power
spectrum such a pattern is a spike at the frequencies of period 2, 4 or 8 px, standing far above the
other frequencies of the same radius; a natural image's spectrum is smooth there (it falls off with the
radius, about as 1/f^2, the same in every direction).

The measure: the 2-D power spectrum of the grey image (mean removed, Hann window to stop the borders from
smearing power along the axes). For each period p in 2, 4, 8 and each direction (the two axes and the two
diagonals: frequencies (0, 1/p), (1/p, 0), (1/p, +-1/p) cycles per px), the peak is the largest power in
the 3x3 bins around that frequency and the reference is the median power of the ring at the same radius
(the bins closest in radius, at least ``RING_BINS`` of them, leaving out the neighbourhoods of all the
probed frequencies). The score of a period is the largest log10(peak / reference) over its directions and
the grid score is the largest over the periods: 0 for no periodic excess, 1 for a tenfold spike.

Measure on lossless (PNG or in-memory uint8) renders: JPEG's 8x8 blocks themselves make a period-8 peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.core.errors import InvalidArgument
from service.core.stylize.measures._pixels import grey

GRID_PERIODS: tuple[int, ...] = (2, 4, 8)
RING_BINS = 256  # the fewest bins a ring's median is taken over (the corner rings of period 2 are short)
PEAK_RADIUS = 1  # bins around a probed frequency searched for its peak (a tone between two bins)
EXCLUDE_RADIUS = 2  # bins around every probed frequency left out of the rings (the Hann main lobe)


@dataclass(frozen=True)
class GridScore:
    score: float  # the largest of the per-period scores
    peaks: dict[int, float] = field(default_factory=dict)  # period (px) -> log10(peak / ring median)


def _directions(period: int) -> list[tuple[float, float]]:
    """(fy, fx) in cycles per px of the two axes and the two diagonals at ``period`` px."""
    f = 1.0 / period
    return [(0.0, f), (f, 0.0), (f, f), (f, -f)]


def power_spectrum(image: np.ndarray) -> np.ndarray:
    """|FFT|^2 of the grey image with its mean removed and a 2-D Hann window applied (unshifted)."""
    g = grey(image)
    g = g - g.mean()
    window = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    return np.abs(np.fft.fft2(g * window)) ** 2


def grid_score(image: np.ndarray, periods: tuple[int, ...] = GRID_PERIODS) -> GridScore:
    """The grid score of an (H, W, 3) RGB image; periods longer than a third of the shorter side are
    left out (too few cycles for a peak)."""
    h, w = image.shape[:2]
    usable = tuple(p for p in periods if p >= 2 and 3 * p <= min(h, w))
    if not usable:
        raise InvalidArgument(f"Image {w}x{h} is too small for a grid score at periods {periods}.")
    power = power_spectrum(image)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    radius = np.hypot(fy, fx)
    bin_width = max(1.0 / h, 1.0 / w)
    # A floor far above the float rounding a flat image leaves (~1e-20) and far below any pattern a uint8
    # image can hold (a 0.01 grey-level tone over 64x64 px already has ~1e2): a blank image scores 0.
    eps = 1e-12 * float(power.mean()) + 1e-6

    def bin_of(f_y: float, f_x: float) -> tuple[int, int]:
        return round(f_y * h) % h, round(f_x * w) % w

    def around(iy: int, ix: int, r: int) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.arange(-r, r + 1)
        return ((iy + offsets) % h)[:, None], ((ix + offsets) % w)[None, :]

    # Every probed frequency and its mirror image (the spectrum of a real image is symmetric).
    probed = [d for p in usable for d in _directions(p)]
    excluded = np.zeros((h, w), dtype=bool)
    for f_y, f_x in probed:
        for sign in (1, -1):
            excluded[around(*bin_of(sign * f_y, sign * f_x), EXCLUDE_RADIUS)] = True
    ring_power, ring_radius = power[~excluded], radius[~excluded]

    peaks: dict[int, float] = {}
    for p in usable:
        best = -np.inf
        for f_y, f_x in _directions(p):
            peak = float(power[around(*bin_of(f_y, f_x), PEAK_RADIUS)].max())
            gap = np.abs(ring_radius - np.hypot(f_y, f_x))
            k = min(RING_BINS, gap.size)
            reach = max(2 * bin_width, float(np.partition(gap, k - 1)[k - 1]))
            reference = float(np.median(ring_power[gap <= reach]))
            best = max(best, float(np.log10((peak + eps) / (reference + eps))))
        peaks[p] = best
    return GridScore(score=max(peaks.values()), peaks=peaks)
