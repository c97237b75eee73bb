"""Tiny randomly initialised WCT levels for tests, exported and registered by the real code path
(``service.core.arbitrary.export.install_decoder``: ONNX export, parity check, cards, manifest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from service.core.arbitrary.decoder import Decoder, tap_geometry
from service.core.arbitrary.export import install_decoder
from service.core.backbones import Backbone
from service.core.imageio import encode_image

TINY_TAPS = ("block3.expand", "stem")  # one coarse and one fine level: the cascade, cheaply
TINY_WIDTH = 0.25


def install_tiny_levels(
    folder: Path, backbone: Backbone, taps: Sequence[str] = TINY_TAPS, seed: int = 0
) -> Path:
    """Decoders of ``taps`` (random weights, a quarter of the default widths) with their encoders."""
    for i, tap in enumerate(taps):
        torch.manual_seed(seed + i)
        geometry = tap_geometry(backbone, tap)
        install_decoder(Decoder(geometry.channels, geometry.stride, TINY_WIDTH), backbone, tap, folder)
    return folder


def painting(seed: int, size: tuple[int, int] = (72, 96)) -> np.ndarray:
    """A generated 'painting': smooth colour fields with stripes (no files from /work/shared)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(0, 1, (3, 1, 1)) + 0.4 * np.sin(2 * np.pi * (rng.uniform(2, 6) * xx + yy))
    stripes = 0.2 * np.sign(np.sin(2 * np.pi * rng.uniform(8, 16) * (xx + rng.uniform(0, 1) * yy)))
    img = np.clip((base + stripes).transpose(1, 2, 0), 0, 1) * 255
    return np.ascontiguousarray(img.astype(np.uint8))


def painting_bytes(seed: int, size: tuple[int, int] = (72, 96)) -> bytes:
    return encode_image(painting(seed, size), "png")
