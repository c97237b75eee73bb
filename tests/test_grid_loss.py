"""The training penalty on periodic 2/4/8 px patterns (service.core.stylize.grid_loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from service.core.errors import InvalidArgument
from service.core.stylize.grid_loss import grid_penalty
from service.core.stylize.measures import grid_score
from service.core.stylize.train import TrainConfig


def _photo() -> torch.Tensor:
    return torch.tensor(data.astronaut()[:128, 128:256] / 255.0).permute(2, 0, 1)[None].float()


def _checker(period: int, side: int = 128, amplitude: float = 0.08) -> torch.Tensor:
    x = torch.arange(side)
    return ((x[:, None] // (period // 2) + x[None, :] // (period // 2)) % 2).float() * amplitude


def test_a_photo_costs_nothing_and_a_checkerboard_costs_much() -> None:
    photo = _photo()
    assert float(grid_penalty(photo)) < 0.05
    for period in (2, 4):
        assert float(grid_penalty((photo + _checker(period)).clamp(0, 1))) > 0.4, period


def test_descending_the_penalty_removes_the_pattern_and_keeps_the_photo() -> None:
    photo = _photo()
    image = (photo + _checker(2)).clamp(0, 1).requires_grad_()
    opt = torch.optim.Adam([image], lr=0.01)
    before = float(grid_penalty(image.detach()))
    for _ in range(30):
        opt.zero_grad()
        grid_penalty(image).backward()
        opt.step()
    after = image.detach().clamp(0, 1)
    assert float(grid_penalty(after)) < 0.2 * before
    # The measure agrees, and what is left is the photo (the pattern's energy went, not the picture's).
    as_uint8 = (after[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    checkered = ((photo + _checker(2)).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert grid_score(as_uint8).peaks[2] < grid_score(checkered).peaks[2] - 1.0
    assert float(torch.corrcoef(torch.stack([after.flatten(), photo.flatten()]))[0, 1]) > 0.97


def test_a_negative_grid_weight_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="--grid-weight"):
        TrainConfig(grid_weight=-1.0).validate()
    with pytest.raises(InvalidArgument, match="--grid-margin"):
        TrainConfig(grid_margin=-0.1).validate()
