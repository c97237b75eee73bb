"""The Laplacian structure term (service/core/stylize/laplacian_loss.py, Li et al. 2017): 0 for the photo,
1 for a render with no structure, blind to texture finer than its pooling cell, and a training term."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.stylize.laplacian_loss import laplacian_loss
from service.core.stylize.train import TrainConfig, train


def _photo(h: int = 64, w: int = 64) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1]: a bright square and a diagonal band on grey, edges at the scale of the image."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = 0.3 + 0.5 * ((yy > h // 4) & (yy < h // 2) & (xx > w // 4) & (xx < 3 * w // 4))
    g = g + 0.2 * (np.abs(yy - xx) < 6)
    rgb = np.stack([g, g * 0.8, 1.0 - g * 0.5]).astype(np.float32)
    return torch.from_numpy(rgb)[None].clamp(0, 1)


def test_the_photo_scores_zero_and_a_flat_render_one() -> None:
    photo = _photo()
    assert float(laplacian_loss(photo, photo)) == pytest.approx(0.0, abs=1e-7)
    assert float(laplacian_loss(torch.full_like(photo, 0.5), photo)) == pytest.approx(1.0, rel=1e-5)


def test_texture_inside_the_pooling_cell_is_free_and_moved_edges_are_not() -> None:
    """A 2 px checker (brush texture finer than the 4 px cell) averages out; the same photo shifted by
    8 px (the layout moved) costs more than a flat render."""
    photo = _photo()
    yy, xx = np.mgrid[0:64, 0:64]
    checker = torch.from_numpy(((yy // 2 + xx // 2) % 2).astype(np.float32) - 0.5) * 0.2
    textured = (photo + checker).clamp(0, 1)
    moved = torch.roll(photo, shifts=(8, 8), dims=(2, 3))
    assert float(laplacian_loss(textured, photo)) < 0.05
    assert float(laplacian_loss(moved, photo)) > 1.0


def test_gradient_steps_bring_the_edges_back() -> None:
    photo = _photo()
    render = torch.full_like(photo, 0.5).requires_grad_(True)
    opt = torch.optim.Adam([render], lr=0.05)
    first = float(laplacian_loss(render.detach(), photo))
    for _ in range(30):
        opt.zero_grad()
        loss = laplacian_loss(render, photo)
        loss.backward()
        opt.step()
    assert float(laplacian_loss(render.detach(), photo)) < 0.5 * first


def test_the_laplacian_weight_adds_its_term_to_the_total(lite0: Backbone, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        arr = (torch.roll(_photo(), shifts=(4 * i, 0), dims=(2, 3))[0].permute(1, 2, 0) * 255).byte().numpy()
        Image.fromarray(arr).save(photos / f"p{i}.png")
    style = np.zeros((64, 64, 3), np.uint8)
    style[::8] = (230, 40, 30)
    torch.set_num_threads(1)
    tiny = {"arch": "mobile2", "steps": 2, "batch": 2, "size": 32, "style_size": 64, "checkpoint_every": 0}
    off = train(TrainConfig(**tiny), style, photos, tmp_path / "a", "s", lite0)  # type: ignore[arg-type]
    on = train(TrainConfig(laplacian_weight=2.0, **tiny), style, photos, tmp_path / "b", "s", lite0)  # type: ignore[arg-type]
    assert all(r["laplacian"] == 0.0 for r in off.history)
    first = on.history[0]
    assert first["laplacian"] > 0.0
    parts = sum(first[k] for k in ("content", "style", "tv", "range", "pixel", "grid", "laplacian"))
    assert first["total"] == pytest.approx(parts, rel=1e-4)
    with pytest.raises(InvalidArgument, match="laplacian-weight"):
        TrainConfig(laplacian_weight=-1.0).validate()
