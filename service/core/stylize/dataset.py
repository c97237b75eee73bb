"""Training batches of random photo crops, reproducible from (seed, step) alone.

Each step's batch is drawn with ``numpy.random.default_rng([seed, step])``: which photos, the crop scale,
position and flip. A resumed run therefore sees exactly the batches the uninterrupted run would have seen,
with no sampler state to save, and the same seed gives the same run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from service.core.errors import InvalidArgument

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def list_photos(data_dir: str | Path) -> list[Path]:
    """Image files directly under ``data_dir`` and its subfolders, sorted (so the order is reproducible)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise InvalidArgument(f"Training data folder {root} does not exist.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not files:
        raise InvalidArgument(f"No images ({', '.join(PHOTO_SUFFIXES)}) found under {root}.")
    return files


class CropSampler:
    """Random square crops of ``size`` px: the short side is scaled to ``size * U(1, max_zoom)`` first."""

    def __init__(self, files: list[Path], size: int, seed: int, max_zoom: float = 1.25) -> None:
        if size < 16:
            raise InvalidArgument(f"Training crop size must be at least 16 px, got {size}.")
        self.files = files
        self.size = size
        self.seed = seed
        self.max_zoom = max_zoom

    def _load(self, path: Path, rng: np.random.Generator) -> np.ndarray:
        side = round(self.size * rng.uniform(1.0, self.max_zoom))
        with Image.open(path) as img:
            img.draft("RGB", (side, side))  # JPEG: decode at a reduced scale when the file is much larger
            rgb = img.convert("RGB")
        w, h = rgb.size
        s = side / min(w, h)
        rgb = rgb.resize((max(side, round(w * s)), max(side, round(h * s))), Image.Resampling.BILINEAR)
        arr = np.asarray(rgb)
        top = int(rng.integers(0, arr.shape[0] - self.size + 1))
        left = int(rng.integers(0, arr.shape[1] - self.size + 1))
        crop = arr[top : top + self.size, left : left + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return crop

    def batch(self, step: int, batch_size: int) -> Tensor:
        """(B, 3, size, size) float32 in [0, 255] for training step ``step`` (0-based)."""
        rng = np.random.default_rng([self.seed, step])
        idx = rng.integers(0, len(self.files), size=batch_size)
        crops = np.stack([self._load(self.files[i], rng) for i in idx])
        return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
