"""CS231n visualisations: class visualisation raises its score, inversion and texture lower their loss,
the filter grid and top patches are right, limits are enforced, cancel frees memory."""

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
from service.core.render import (
    ClassVizOptions,
    InversionOptions,
    PatchOptions,
    TextureOptions,
    class_visualization,
    feature_inversion,
    filter_grid,
    max_activating_patches,
    patch_grid,
    texture_synthesis,
)


def resized(image: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((w, h)))


def run(fn: object, *args: object, key: str) -> list[float]:
    reports: list[Progress] = []
    fn(*args, progress=reports.append)  # type: ignore[operator]
    return [r.losses[key] for r in reports]


@pytest.mark.parametrize("parametrization", ["fourier", "pixel"])
def test_class_visualization_raises_the_class_score(lite0: Backbone, parametrization: str) -> None:
    o = ClassVizOptions(size=48, steps=6, blur_every=3, parametrization=parametrization)
    scores = run(class_visualization, lite0, "goldfish", o, key="score")
    assert len(scores) == 6 and scores[-1] > scores[0], scores


def test_fourier_image_starts_grey_stays_in_range_and_follows_the_seed() -> None:
    from service.core.render.params import FourierImage

    a, b, c = FourierImage(40, 56, seed=1), FourierImage(40, 56, seed=1), FourierImage(40, 56, seed=2)
    x = a().detach()
    assert x.shape == (1, 3, 40, 56) and float(x.min()) > 0 and float(x.max()) < 1
    assert abs(float(x.mean()) - 0.5) < 0.05 and float(x.std()) < 0.05  # a nearly uniform grey start
    assert torch.equal(x, b().detach()) and not torch.equal(x, c().detach())
    with torch.no_grad():  # a large spectrum still maps into (0, 1): the sigmoid, not clipping
        a.spectrum.mul_(1e4)
    y = a().detach()
    assert float(y.min()) >= 0 and float(y.max()) <= 1 and float(y.std()) > 0.2


def test_class_visualization_refuses_an_unknown_parametrization(lite0: Backbone) -> None:
    with pytest.raises(InvalidArgument, match="parametrization"):
        class_visualization(lite0, 1, ClassVizOptions(size=32, steps=1, parametrization="wavelet"))


def test_feature_inversion_loss_falls(lite0: Backbone, chelsea: np.ndarray) -> None:
    image = resized(chelsea, 48, 32)
    losses = run(
        feature_inversion, lite0, image, InversionOptions(tap="block3", size=48, steps=8), key="total"
    )
    assert losses[-1] < 0.8 * losses[0], losses


def test_texture_loss_falls(lite0: Backbone, coffee: np.ndarray) -> None:
    source = resized(coffee, 48, 32)
    losses = run(texture_synthesis, lite0, source, TextureOptions(size=32, steps=6), key="style")
    assert losses[-1] < 0.7 * losses[0], losses


def test_same_seed_same_texture(lite0: Backbone, coffee: np.ndarray) -> None:
    source = resized(coffee, 32, 24)
    o = TextureOptions(size=24, steps=2, optimizer="adam", seed=1)
    np.testing.assert_array_equal(texture_synthesis(lite0, source, o), texture_synthesis(lite0, source, o))


def test_filter_grid(lite0: Backbone) -> None:
    grid = filter_grid(lite0, scale=4, padding=1)
    # 32 stem filters of 3x3 -> 6 columns x 6 rows of 12 px tiles with 1 px gaps.
    assert grid.shape == (6 * 13 + 1, 6 * 13 + 1, 3) and grid.dtype == np.uint8
    tile = grid[1:13, 1:13]
    assert tile.min() == 0 and tile.max() == 255  # each filter is stretched to the full range


def test_max_activating_patches(lite0: Backbone, chelsea: np.ndarray, coffee: np.ndarray) -> None:
    flat = np.full((48, 48, 3), 128, np.uint8)
    images = [resized(chelsea, 64, 48), flat, resized(coffee, 64, 48)]
    patches = max_activating_patches(lite0, iter(images), "block1", 3, PatchOptions(size=64, top_k=2))
    assert len(patches) == 2
    assert patches[0].activation >= patches[1].activation
    for p in patches:
        # The activation is the channel's maximum over that image.
        x = torch.from_numpy(images[p.image_index].copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            best = float(lite0.features(x, ["block1"])["block1"][0, 3].max())
        assert p.activation == pytest.approx(best, rel=1e-4, abs=1e-5)
        top, left, bottom, right = p.box
        assert 0 <= top < bottom <= 48 and 0 <= left < right <= 64
        assert p.crop.shape == (bottom - top, right - left, 3)
    assert patch_grid(patches, tile=16).shape == (16 + 4, 2 * 16 + 6, 3)


def test_limits_and_bad_input(lite0: Backbone, chelsea: np.ndarray) -> None:
    with pytest.raises(ImageTooLarge):
        class_visualization(lite0, 1, ClassVizOptions(size=512, max_side=256))
    with pytest.raises(ImageTooLarge):
        feature_inversion(lite0, chelsea, InversionOptions(size=512, max_side=256))
    with pytest.raises(ImageTooLarge):
        texture_synthesis(lite0, chelsea, TextureOptions(size=64, max_pixels=1000))
    with pytest.raises(InvalidArgument, match="Unknown class"):
        class_visualization(lite0, "no such thing")
    with pytest.raises(InvalidArgument, match="Unknown tap"):
        feature_inversion(lite0, chelsea, InversionOptions(tap="nope"))
    with pytest.raises(InvalidArgument, match="channel 99"):
        max_activating_patches(lite0, [chelsea], "stem", 99)
    with pytest.raises(InvalidArgument, match="No images"):
        max_activating_patches(lite0, [], "stem", 0)


@pytest.mark.parametrize("which", ["class", "invert", "texture"])
def test_cancel_frees_memory(
    lite0: Backbone, chelsea: np.ndarray, which: str, monkeypatch: pytest.MonkeyPatch
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
        if p.step == 2:
            token.cancel()

    image = resized(chelsea, 32, 24)
    with pytest.raises(Cancelled):
        if which == "class":
            class_visualization(lite0, 1, ClassVizOptions(size=32, steps=20), progress=progress, cancel=token)
        elif which == "invert":
            feature_inversion(
                lite0, image, InversionOptions(size=32, steps=20), progress=progress, cancel=token
            )
        else:
            texture_synthesis(
                lite0, image, TextureOptions(size=32, steps=20), progress=progress, cancel=token
            )
    assert steps == [1, 2]
    gc.collect()
    assert seen and all(ref() is None for ref in seen)


def test_gaussian_blur_keeps_flat_images_flat_and_smooths_noise() -> None:
    from service.core.render.common import gaussian_blur

    flat = torch.full((1, 3, 20, 30), 0.7)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)
    noise = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    blurred = gaussian_blur(noise, 1.0)
    assert blurred.shape == noise.shape
    assert blurred.std() < 0.6 * noise.std()
    assert abs(float(blurred.mean() - noise.mean())) < 0.02
