"""Distillation of Gatys renders into a transform net (lever 5 of the fast-style recipe).

The teacher is the slow optimiser of Gatys, Ecker & Bethge 2016 ("Image Style Transfer Using Convolutional
Neural Networks", CVPR): per image, it reaches the style distance the fast nets are scored against (their
ratio to it is the bar) and keeps the photo's structure. A fast net trained on the perceptual loss alone
(Johnson et al. 2016, arXiv:1603.08155) has to find that trade-off from the loss; here it is also shown the
teacher's answer on a fixed set of training crops, and pulled toward the teacher's features there, as in
knowledge distillation (Hinton, Vinyals & Dean 2015, arXiv:1503.02531) and its use for style transfer
(Wang et al. 2020, "Collaborative Distillation for Ultra-Resolution Universal Style Transfer", CVPR,
arXiv:2003.08436).

A cache holds ``count`` random crops of the training photos (drawn from a stream apart from the training
batches') and their Gatys renders at the training crop size, with the painting at the training style size
(``style_scale = style_size / size``), so the teacher paints at the scale the net is trained at. It is
built once per painting, saved after every render (a killed build resumes), and records the painting's
hash so it is never used with another painting. The distance to the teacher is ``PerceptualLoss``'s
``teacher`` term: the feature MSE at the loss's own taps, computed with the style and content terms.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, ModelLoadError
from service.core.progress import ProgressCallback, ProgressClock
from service.core.render.gatys import GatysOptions, gatys
from service.core.stylize.dataset import CropSampler, list_photos

# The cache's crops come from CropSampler(seed + CACHE_SEED_OFFSET): not crops the batches already show.
CACHE_SEED_OFFSET = 7919


def painting_sha256(style_image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(style_image).tobytes()).hexdigest()


@dataclass
class DistillCache:
    """Training crops and their Gatys renders, both (N, 3, S, S) uint8."""

    photos: Tensor
    renders: Tensor
    style_sha256: str
    size: int
    style_size: int
    gatys_steps: int
    cpu_seconds: float = 0.0  # what building it cost, all resumes together

    def __len__(self) -> int:
        return int(self.photos.shape[0])

    def batch(self, seed: int, step: int, batch_size: int) -> tuple[Tensor, Tensor]:
        """(photos, renders) of step ``step``, float32 0..255, from (seed, step) alone (a resumed run
        draws the same)."""
        if not len(self):
            raise InvalidArgument("The distillation cache is empty.")
        rng = np.random.default_rng([seed, step, 2])  # apart from the crops' [seed, step], the roll's 1
        idx = torch.from_numpy(rng.integers(0, len(self), size=batch_size))
        flip = torch.from_numpy(rng.random(batch_size) < 0.5)
        photos, renders = self.photos[idx].float(), self.renders[idx].float()
        # The same flip for a crop and its render: the pair stays aligned.
        photos = torch.where(flip[:, None, None, None], photos.flip(-1), photos)
        renders = torch.where(flip[:, None, None, None], renders.flip(-1), renders)
        return photos, renders

    def save(self, path: Path) -> None:
        payload = {
            "photos": self.photos,
            "renders": self.renders,
            "style_sha256": self.style_sha256,
            "size": self.size,
            "style_size": self.style_size,
            "gatys_steps": self.gatys_steps,
            "cpu_seconds": self.cpu_seconds,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)


def load_cache(path: str | Path) -> DistillCache:
    p = Path(path)
    if not p.is_file():
        raise InvalidArgument(
            f"Distillation cache {p} does not exist; build it with scripts/distill_cache.py."
        )
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
        return DistillCache(
            d["photos"],
            d["renders"],
            str(d["style_sha256"]),
            int(d["size"]),
            int(d["style_size"]),
            int(d["gatys_steps"]),
            float(d.get("cpu_seconds", 0.0)),
        )
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"{p} is not a distillation cache: {exc}") from None


def build_cache(
    backbone: Backbone,
    style_image: np.ndarray,
    data_dir: str | Path,
    path: str | Path,
    count: int,
    size: int = 256,
    style_size: int = 512,
    gatys_steps: int = 300,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> DistillCache:
    """Render ``count`` crops with Gatys into ``path``, resuming a partial cache of the same settings."""
    if count < 1:
        raise InvalidArgument(f"--count must be at least 1, got {count}.")
    p = Path(path)
    sha = painting_sha256(style_image)
    empty = torch.zeros((0, 3, size, size), dtype=torch.uint8)
    cache = DistillCache(empty, empty.clone(), sha, size, style_size, gatys_steps)
    if p.is_file():
        cache = load_cache(p)
        settings = (cache.style_sha256, cache.size, cache.style_size, cache.gatys_steps)
        if settings != (sha, size, style_size, gatys_steps):
            raise InvalidArgument(f"{p} was built with other settings or another painting; remove it first.")
    sampler = CropSampler(list_photos(data_dir), size, seed + CACHE_SEED_OFFSET)
    options = GatysOptions(size=size, steps=gatys_steps, style_scale=style_size / size)
    clock = ProgressClock(count - len(cache))
    done_before = len(cache)
    for i in range(len(cache), count):
        cpu0 = time.process_time()
        crop = sampler.batch(i, 1)[0].permute(1, 2, 0).numpy().astype(np.uint8)
        render = gatys(backbone, crop, [style_image], options)
        pair = [torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None] for a in (crop, render)]
        cache.photos = torch.cat([cache.photos, pair[0]])
        cache.renders = torch.cat([cache.renders, pair[1]])
        cache.cpu_seconds += time.process_time() - cpu0
        cache.save(p)
        if progress is not None:
            progress(clock.report(i + 1 - done_before, {"cpu_s": cache.cpu_seconds}))
    return cache
