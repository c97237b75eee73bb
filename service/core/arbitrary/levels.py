"""The Lite0 taps a WCT level can sit at, and the grid images are padded to: plain constants, importable
without torch (the CLI's argument parser lists them)."""

from __future__ import annotations

# Lite0's style taps (the ones the Gram style distance is measured on), fine to coarse; strides 2, 2, 4, 8, 16.
TAPS: tuple[str, ...] = ("stem", "block1.expand", "block3.expand", "block5.expand", "block8.expand")
ALIGN = 16  # images are reflect-padded to a multiple of this (the deepest supported stride)


def padded_side(side: int, align: int = ALIGN) -> int:
    """``side`` rounded up to a multiple of ``align``."""
    return -(-side // align) * align
