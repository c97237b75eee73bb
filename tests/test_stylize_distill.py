"""Distillation toward Gatys renders: the cache (built, resumed, refused for another painting), its
batches (reproducible, each crop aligned with its render), the distance to the teacher, and a training run
that uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.stylize.distill import DistillCache, build_cache, load_cache
from service.core.stylize.losses import LossWeights, PerceptualLoss
from service.core.stylize.train import TrainConfig, jitter_offset, step_terms, train
from tests.paintings import stripes

SIZE = 32
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _painting(seed: int = 0) -> np.ndarray:
    return stripes(seed)


@pytest.fixture(scope="module")
def cache_path(tmp_path_factory: pytest.TempPathFactory, lite0: Backbone, photos: Path) -> Path:
    path = tmp_path_factory.mktemp("distill") / "cache.pt"
    build_cache(lite0, _painting(), photos, path, count=2, size=SIZE, style_size=64, gatys_steps=8)
    return path


def test_the_cache_holds_crops_and_their_renders(cache_path: Path) -> None:
    cache = load_cache(cache_path)
    assert len(cache) == 2 and cache.photos.shape == (2, 3, SIZE, SIZE) == cache.renders.shape
    assert cache.photos.dtype == torch.uint8 and cache.cpu_seconds > 0
    # Gatys changed the picture (it is a render, not a copy), and the two crops differ.
    assert float((cache.photos.float() - cache.renders.float()).abs().mean()) > 1.0
    assert not torch.equal(cache.photos[0], cache.photos[1])


def test_a_build_resumes_and_keeps_what_was_rendered(
    cache_path: Path, tmp_path: Path, lite0: Backbone, photos: Path
) -> None:
    path = tmp_path / "cache.pt"
    path.write_bytes(cache_path.read_bytes())
    before = load_cache(path)
    grown = build_cache(lite0, _painting(), photos, path, count=3, size=SIZE, style_size=64, gatys_steps=8)
    assert len(grown) == 3
    assert torch.equal(grown.renders[:2], before.renders)  # the first two were not rendered again
    assert grown.cpu_seconds > before.cpu_seconds
    with pytest.raises(InvalidArgument, match="another painting"):
        build_cache(lite0, _painting(1), photos, path, count=4, size=SIZE, style_size=64, gatys_steps=8)


def test_batches_are_reproducible_and_keep_each_crop_with_its_render() -> None:
    photos = torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8)
    cache = DistillCache(photos, photos.clone(), "x", 8, 16, 1)
    a, ra = cache.batch(0, 3, 16)
    b, _ = cache.batch(0, 3, 16)
    assert torch.equal(a, b)  # from (seed, step): a resumed run draws the same batch
    assert torch.equal(a, ra)  # the render here equals its photo: any misaligned flip or index would show
    assert not torch.equal(a, cache.batch(0, 4, 16)[0])
    flipped = [any(torch.equal(x, p.float().flip(-1)) for p in photos) for x in a]
    assert any(flipped) and not all(flipped)  # both orientations occur


def test_the_distance_to_the_teacher_is_zero_for_its_own_render(lite0: Backbone, chelsea: np.ndarray) -> None:
    style = torch.from_numpy(_painting()).permute(2, 0, 1)[None].float() / 255
    loss = PerceptualLoss(lite0, style, LossWeights())
    render = torch.from_numpy(chelsea[:64, :64]).permute(2, 0, 1)[None].float() / 255
    assert float(loss(render, render, render)["teacher"]) < 1e-9  # 0 up to the straight-through clip
    assert "teacher" not in loss(render, render)  # no teacher, no term
    other = render.flip(-1).requires_grad_(True)
    d = loss(other, render, render)["teacher"]
    assert 0.05 < float(d.detach()) < 5.0  # normalised: an unrelated picture sits near 1
    d.backward()
    assert other.grad is not None and float(other.grad.abs().sum()) > 0


def test_the_teacher_is_rolled_with_the_output(lite0: Backbone, chelsea: np.ndarray) -> None:
    style = torch.from_numpy(_painting()).permute(2, 0, 1)[None].float() / 255
    loss = PerceptualLoss(lite0, style, LossWeights())
    out = torch.from_numpy(chelsea[:64, :64]).permute(2, 0, 1)[None].float()
    config = TrainConfig(shift_jitter=32, distill="cache", distill_weight=1.0)
    step = next(s for s in range(20) if jitter_offset(0, s, 32) != (0, 0))
    # The net painted exactly the teacher's picture: with one offset for both, the distance is 0.
    assert float(step_terms(config, loss, out, out, step, out)["distill"]) < 1e-9
    # A teacher one pixel apart is seen as apart: the test would fail if only the output were rolled.
    assert float(step_terms(config, loss, out, out, step, out.roll(1, dims=3))["distill"]) > 0.0
    assert float(step_terms(config, loss, out, out, step)["distill"]) == 0.0  # a fresh batch: no term


def test_training_with_the_cache_uses_it_and_refuses_another_painting(
    cache_path: Path, tmp_path: Path, lite0: Backbone, photos: Path
) -> None:
    tiny = {"batch": 2, "size": SIZE, "style_size": 64, "checkpoint_every": 0, "steps": 4}
    config = TrainConfig(distill=str(cache_path), distill_every=2, **tiny)  # type: ignore[arg-type]
    result = train(config, _painting(), photos, tmp_path, "d", lite0)
    distill = [row["distill"] for row in result.history]
    assert distill[0] > 0 and distill[2] > 0  # steps 0 and 2 drew the cache
    assert distill[1] == 0 and distill[3] == 0
    with pytest.raises(InvalidArgument, match="another painting"):
        train(config, _painting(1), photos, tmp_path, "e", lite0)
    with pytest.raises(InvalidArgument, match="distill-every"):
        TrainConfig(distill=str(cache_path), distill_every=0).validate()


def test_a_multi_style_run_refuses_the_cache(lite0: Backbone, photos: Path, tmp_path: Path) -> None:
    from service.core.stylize.train_multi import StyleSource, train_multi

    config = TrainConfig(distill="cache.pt", batch=2, size=SIZE, style_size=64, steps=1)
    with pytest.raises(InvalidArgument, match="single-style"):
        train_multi(config, [StyleSource("a", _painting())], photos, tmp_path, "m", lite0)
