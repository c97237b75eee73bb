"""Picture measures of a render: structure, grid score and droplets, on generated and bundled images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from service.core.errors import InvalidArgument
from service.core.stylize.measures import (
    droplet_mask,
    droplet_score,
    grid_score,
    picture_quality,
    structure,
)


def _checker(h: int, w: int, square: int) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    board = ((y // square + x // square) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


def _smooth(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    out = ndimage.gaussian_filter(image.astype(np.float64), (sigma, sigma, 0))
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("square", [1, 2, 4])
def test_checkerboard_has_a_high_grid_score_at_its_period(square: int) -> None:
    g = grid_score(_checker(200, 300, square))
    period = 2 * square
    assert g.score > 5 and g.peaks[period] == g.score
    assert all(v < 1 for p, v in g.peaks.items() if p != period)


def test_smooth_photo_has_a_low_grid_score_and_a_faint_crosshatch_shows(chelsea: np.ndarray) -> None:
    photo = _smooth(chelsea)
    clean = grid_score(photo)
    assert clean.score < 1.5
    # A 2-px crosshatch of +-6 grey levels (period 4), hardly visible, lifts the period-4 peak well above
    # the photo's own and leaves the others where they were.
    hatch = (_checker(*photo.shape[:2], 2).astype(np.int16) // 255 * 12 - 6).astype(np.int16)
    hatched = grid_score(np.clip(photo.astype(np.int16) + hatch, 0, 255).astype(np.uint8))
    assert hatched.peaks[4] > clean.peaks[4] + 2
    assert hatched.peaks[2] == pytest.approx(clean.peaks[2], abs=0.5)


def test_blank_image_has_no_grid_and_no_structure(chelsea: np.ndarray) -> None:
    blank = np.full((120, 160, 3), 128, np.uint8)
    assert grid_score(blank).score == pytest.approx(0.0, abs=1e-6)
    assert structure(blank, chelsea) == 0.0 and structure(chelsea, blank) == 0.0
    with pytest.raises(InvalidArgument):
        grid_score(np.zeros((4, 4, 3), np.uint8))


def test_structure_is_one_for_the_same_image_and_low_for_an_unrelated_one(
    chelsea: np.ndarray, coffee: np.ndarray
) -> None:
    assert structure(chelsea, chelsea) == pytest.approx(1.0)
    assert abs(structure(coffee, chelsea)) < 0.3
    # Recolouring keeps the layout; the render may come at another size (both go to 128 px).
    recoloured = np.ascontiguousarray(chelsea[..., ::-1] // 2 + 60)
    assert structure(recoloured, chelsea) > 0.9
    assert structure(chelsea[::2, ::2], chelsea) > 0.95
    # Pixel grain is averaged away (the measure is about the layout); blotches of a few px at 128 px
    # (new edges) lose some of it, a shifted photo more.
    rng = np.random.default_rng(0)
    grain = np.clip(chelsea + rng.normal(0, 60, chelsea.shape), 0, 255).astype(np.uint8)
    assert structure(grain, chelsea) > 0.9
    blotches = ndimage.gaussian_filter(rng.normal(0, 1, chelsea.shape[:2]), 6)[..., None]
    blotched = np.clip(chelsea + blotches / blotches.std() * 40, 0, 255).astype(np.uint8)
    shifted = np.roll(chelsea, 40, axis=1)
    assert structure(shifted, chelsea) < structure(blotched, chelsea) < 0.9


def _palette_painting() -> np.ndarray:
    """A "painting" of browns, ochres and a deep blue: no magenta, no green."""
    rng = np.random.default_rng(1)
    colours = np.array([[120, 80, 40], [200, 160, 90], [40, 50, 120], [230, 220, 200]], np.uint8)
    return _smooth(colours[rng.integers(0, 4, (48, 64))].repeat(4, 0).repeat(4, 1), 1.0)


def _render_of(photo: np.ndarray) -> np.ndarray:
    """A clean "render": the photo's layout in the painting's browns (sepia tone)."""
    grey = photo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    tone = np.array([1.0, 0.8, 0.55])
    return np.clip(grey[..., None] * tone[None, None] + 20, 0, 255).astype(np.uint8)


def _with_droplets(render: np.ndarray) -> np.ndarray:
    out = render.copy()
    y, x = np.mgrid[: out.shape[0], : out.shape[1]]
    for cy, cx in [(60, 80), (200, 300), (250, 120)]:  # solid magenta discs
        out[(y - cy) ** 2 + (x - cx) ** 2 < 10**2] = (255, 0, 255)
    disc = (y - 120) ** 2 + (x - 420) ** 2 < 14**2  # a rainbow blob: the hue turns with the angle
    hue = (np.arctan2(y - 120, x - 420) / (2 * np.pi) + 0.5)[disc]
    out[disc] = (np.stack([np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)], 1) * 127 + 128).astype(
        np.uint8
    )
    patch = (slice(40, 70), slice(200, 240))  # the nets' kind: a 1 px checker of vivid orange and blue
    checker = ((y[patch] + x[patch]) % 2).astype(bool)
    out[patch] = np.where(checker[..., None], np.uint8([230, 120, 0]), np.uint8([0, 70, 170]))
    return out


def test_droplets_score_injected_blobs_high_and_the_clean_render_low(chelsea: np.ndarray) -> None:
    painting = _palette_painting()
    clean = _render_of(chelsea)
    dirty = _with_droplets(clean)
    assert droplet_score(clean, chelsea, painting) < 0.5
    score = droplet_score(dirty, chelsea, painting)
    # 3 discs of ~314 px, one of ~615 px and a 30x40 checker: about 2.8 % of the 451x300 image.
    assert 15 < score < 40
    mask = droplet_mask(dirty, chelsea, painting)
    assert mask[60, 80] and mask[120, 420] and mask[55, 220] and not mask[150, 30]
    # The photo and the render itself are clean by construction; a smooth copy of the photo too.
    assert droplet_score(chelsea, chelsea, painting) == 0.0
    assert droplet_score(_smooth(chelsea), chelsea, painting) < 0.5


def test_droplets_are_only_colours_from_neither_the_photo_nor_the_painting(chelsea: np.ndarray) -> None:
    dirty = _with_droplets(_render_of(chelsea))
    foreign = droplet_score(dirty, chelsea, _palette_painting())
    # A painting that has vivid magenta and every other hue allows the blobs' colours.
    vivid = np.stack(np.meshgrid(np.linspace(0, 1, 64), np.ones(64)), -1)[..., 0]
    rainbow = np.stack([np.cos(2 * np.pi * (vivid + k / 3)) for k in range(3)], -1) * 127 + 128
    assert droplet_score(dirty, chelsea, rainbow.astype(np.uint8)) < foreign / 10
    # So does a photo that is vivid at those very places (a red roof may stay red).
    assert droplet_score(dirty, dirty, _palette_painting()) == 0.0


def test_picture_quality_puts_them_together(chelsea: np.ndarray) -> None:
    photo = _smooth(chelsea, 1.0)
    q = picture_quality(_checker(*photo.shape[:2], 1) // 8 + photo // 2 + photo // 3, photo)
    assert q.grid_over_photo > 3 and q.structure > 0.5 and np.isnan(q.droplets)
    assert q.grid_peaks[2] == q.grid
    same = picture_quality(photo, photo, _palette_painting())
    assert same.grid_over_photo == 0.0 and same.structure == pytest.approx(1.0) and same.droplets == 0.0
