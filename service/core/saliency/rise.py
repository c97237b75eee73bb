"""RISE: Randomized Input Sampling for Explanation.

Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box Models"
(arXiv:1806.07421): draw N binary ``cells`` x ``cells`` grids (each cell kept with probability p), upsample
each bilinearly to (cells + 1) times the cell size, crop at a random shift, multiply the image by it, and
weight each mask by the class *probability* of the masked image: S = sum_i P_c(x * M_i) M_i / (N p).

Masks are drawn once per call from ``seed`` and shared by every image of the batch (an image gets the same
map alone or in a batch); masked images go through the net ``batch_size`` at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.saliency.base import Ticker, check_range, chunks


@dataclass(frozen=True)
class RiseOptions:
    masks: int = 1000  # N; the paper uses 4000 on ResNet-50, more masks = less noise
    cells: int = 7  # grid side s
    p: float = 0.5  # probability that a cell is kept
    seed: int = 0
    batch_size: int = 64  # masked images per forward

    def __post_init__(self) -> None:
        check_range("masks", self.masks, 1, 100_000)
        check_range("cells", self.cells, 1, 64)
        check_range("p", self.p, 0.01, 1.0)
        check_range("batch_size", self.batch_size, 1)


def rise_ticks(options: RiseOptions, batch: int, height: int, width: int) -> int:
    return len(chunks(options.masks, max(1, options.batch_size // batch)))


class MaskSampler:
    """The N random masks of one call, drawn up front (grids and shifts) and rendered chunk by chunk."""

    def __init__(self, options: RiseOptions, height: int, width: int, device: torch.device) -> None:
        gen = torch.Generator(device="cpu").manual_seed(options.seed)
        s = options.cells
        self.grids = (torch.rand((options.masks, 1, s, s), generator=gen) < options.p).float()
        self.cell_h, self.cell_w = math.ceil(height / s), math.ceil(width / s)
        self.shifts = torch.stack(
            [
                torch.randint(0, self.cell_h, (options.masks,), generator=gen),
                torch.randint(0, self.cell_w, (options.masks,), generator=gen),
            ],
            dim=1,
        )
        self.size = (height, width)
        self.device = device

    def render(self, part: range) -> Tensor:
        """Masks ``part`` as (n, 1, H, W) floats in [0, 1]."""
        s = self.grids.shape[-1]
        up = F.interpolate(
            self.grids[part.start : part.stop].to(self.device),
            size=((s + 1) * self.cell_h, (s + 1) * self.cell_w),
            mode="bilinear",
            align_corners=False,
        )
        h, w = self.size
        return torch.stack(
            [
                up[n, :, dy : dy + h, dx : dx + w]
                for n, (dy, dx) in enumerate(self.shifts[part.start : part.stop].tolist())
            ]
        )


def rise(backbone: Backbone, x: Tensor, targets: Tensor, options: RiseOptions, ticker: Ticker) -> Tensor:
    b, c, h, w = x.shape
    sampler = MaskSampler(options, h, w, x.device)
    total = torch.zeros((b, h, w), device=x.device)
    with torch.no_grad():
        for part in chunks(options.masks, max(1, options.batch_size // b)):
            masks = sampler.render(part)  # (n, 1, H, W)
            masked = (x.unsqueeze(0) * masks.unsqueeze(1)).reshape(-1, c, h, w)  # (n*B, 3, H, W)
            probs = torch.softmax(backbone(masked), dim=1)
            p = probs.gather(1, targets.repeat(len(part)).view(-1, 1)).view(len(part), b)  # (n, B)
            total += torch.einsum("nb,nhw->bhw", p, masks[:, 0])
            ticker.tick()
    return total / (options.masks * options.p)
