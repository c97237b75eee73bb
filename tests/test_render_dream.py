"""DeepDream: the objective rises (whole layer, one channel, guided, tiled), seeds reproduce, cancel is
prompt and frees memory, limits are enforced."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import Cancelled, ImageTooLarge, InvalidArgument
from service.core.progress import CancelToken, Progress
from service.core.render.deepdream import DreamOptions, _Objective, deepdream, octave_sizes, tiled_gradient


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(chelsea).resize((64, 48)))


def objectives(backbone: Backbone, image: np.ndarray, o: DreamOptions) -> tuple[list[float], np.ndarray]:
    reports: list[Progress] = []
    out = deepdream(backbone, image, o, progress=reports.append)
    return [r.losses["objective"] for r in reports], out


@pytest.mark.parametrize(
    "extra",
    [{}, {"channel": 5, "layers": ("block3.expand",)}, {"tile_size": 32}],
    ids=["layer", "channel", "tiled"],
)
def test_objective_rises(lite0: Backbone, photo: np.ndarray, extra: dict[str, object]) -> None:
    o = DreamOptions(octaves=1, steps=5, jitter=4, step_size=0.02, **extra)  # type: ignore[arg-type]
    values, out = objectives(lite0, photo, o)
    assert len(values) == 5
    assert values[-1] > values[0], values
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - photo.astype(int)).mean() > 0.5


def test_guided_dream_moves_towards_the_guide(lite0: Backbone, photo: np.ndarray, coffee: np.ndarray) -> None:
    guide = np.asarray(Image.fromarray(coffee).resize((64, 48)))
    o = DreamOptions(octaves=1, steps=4, jitter=0, step_size=0.02, guide=guide, layers=("block5",))
    values, _ = objectives(lite0, photo, o)
    assert values[-1] > values[0], values


def test_tiles_cover_the_image_like_one_pass(lite0: Backbone) -> None:
    """With a receptive field inside one tile, the tiled gradient equals the single-pass one there."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    objective = _Objective(lite0, ("stem",), None)
    whole, _ = tiled_gradient(x, objective, 64)
    tiled, _ = tiled_gradient(x, objective, 32)
    # The stem is one 3x3/2 conv: away from tile borders each pixel sees only its own tile (the
    # objective is a mean, so per-tile values are scaled by the tile's share of positions: 4 tiles).
    inner = (slice(None), slice(None), slice(4, 28), slice(4, 28))
    torch.testing.assert_close(tiled[inner] / 4, whole[inner], rtol=1e-4, atol=1e-7)


def test_octave_sizes() -> None:
    assert octave_sizes(300, 400, 3, 2.0) == [(75, 100), (150, 200), (300, 400)]
    assert octave_sizes(64, 64, 4, 2.0) == [(32, 32), (64, 64)]  # octaves below 32 px are dropped


def test_same_seed_same_image(lite0: Backbone, photo: np.ndarray) -> None:
    o = DreamOptions(octaves=2, octave_scale=1.5, steps=2, jitter=8, seed=3)
    a = deepdream(lite0, photo, o)
    b = deepdream(lite0, photo, o)
    c = deepdream(lite0, photo, DreamOptions(octaves=2, octave_scale=1.5, steps=2, jitter=8, seed=4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cancel_stops_within_one_iteration_and_frees_memory(
    lite0: Backbone, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[weakref.ref[torch.Tensor]] = []
    original = lite0.features

    def features(x: torch.Tensor, taps: list[str]) -> dict[str, torch.Tensor]:
        seen.append(weakref.ref(x))
        return original(x, taps)

    monkeypatch.setattr(lite0, "features", features)
    token = CancelToken()
    steps: list[int] = []

    def progress(p: Progress) -> None:
        steps.append(p.step)
        if p.step == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        deepdream(lite0, photo, DreamOptions(octaves=2, steps=20), progress=progress, cancel=token)
    assert steps == [1, 2, 3]
    assert len(seen) <= 4  # three iterations ran, at most one more started
    gc.collect()
    assert seen and all(ref() is None for ref in seen)


def test_limits_and_bad_options(lite0: Backbone, photo: np.ndarray) -> None:
    with pytest.raises(ImageTooLarge, match="longest side allowed is 32"):
        deepdream(lite0, photo, DreamOptions(max_side=32))
    with pytest.raises(ImageTooLarge):
        deepdream(lite0, photo, DreamOptions(max_pixels=100))
    with pytest.raises(InvalidArgument, match="Unknown tap"):
        deepdream(lite0, photo, DreamOptions(layers=("block99",)))
    with pytest.raises(InvalidArgument, match="channel 999"):
        deepdream(lite0, photo, DreamOptions(layers=("stem",), channel=999))
    for bad in (
        DreamOptions(octaves=0),
        DreamOptions(steps=0),
        DreamOptions(step_size=0),
        DreamOptions(octave_scale=0.5),
    ):
        with pytest.raises(InvalidArgument):
            deepdream(lite0, photo, bad)
