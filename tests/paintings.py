"""A synthetic painting for training tests: diagonal colour stripes, whose strong and easily measured Gram
statistics make a falling style loss visible within a few steps of a tiny net."""

from __future__ import annotations

import numpy as np

PALETTE = np.array([[230, 40, 30], [30, 60, 220], [250, 220, 40]], np.uint8)


def stripes(shift: int = 0, size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8 RGB stripes 6 px wide; another ``shift`` gives another painting (other Grams
    at the border, another cache key)."""
    yy, xx = np.mgrid[0:size, 0:size]
    return np.ascontiguousarray(PALETTE[((xx + yy + shift) // 6) % 3])
