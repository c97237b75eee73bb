"""Blends, regions and the engine's multi-style nets (issue #19), on a toy conditional net exported by torch
(``tests/tinymulti.py``) beside tiny single-style nets: blend validation, one-hot equals the pure style, a
50/50 blend lies between its two styles, per-row weights in one batch, name resolution, the listing's
``net``, and the mask composite without a seam."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import ImageTooLarge, InvalidArgument, UnknownModel
from service.core.imageio import ImageLimits, resize_max_side
from service.core.stylize.blend import parse_blend
from service.core.stylize.engine import StyleEngine
from service.core.stylize.regions import composite, decode_mask, fit_mask, saliency_mask
from tests.tinymodels import write_tiny_models
from tests.tinymulti import write_tiny_multi


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # "ember" is both a single-style net and a style of the multi net: the single net wins a plain name.
    d = write_tiny_models(tmp_path_factory.mktemp("multi"), names=("tiny_a", "ember"))
    return write_tiny_multi(d)


@pytest.fixture(scope="module")
def engine(folder: Path) -> StyleEngine:
    return StyleEngine.load(folder, providers=("CPUExecutionProvider",), intra_threads=1, warmup=False)


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> np.ndarray:
    return resize_max_side(chelsea, 240)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# --- blend parsing -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["starry_night:0.7,the_scream:0.3", "starry_night=0.7, the_scream=0.3", '{"starry_night": 7, "the_scream": 3}',
     '[{"style": "starry_night", "weight": 0.7}, {"style": "the_scream", "weight": 0.3}]',
     '[["starry_night", 1.4], ["the_scream", 0.6]]'],
)  # fmt: skip
def test_every_spelling_gives_the_same_normalised_blend(text: str) -> None:
    blend = parse_blend(text)
    assert blend.names == ("starry_night", "the_scream")
    assert [round(w, 9) for _, w in blend.weights] == [0.7, 0.3]
    assert math.isclose(sum(w for _, w in blend.weights), 1.0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a:-0.5,b:1", "must not be negative"),
        ("a:0,b:0", "all zero"),
        ("a:nan,b:1", "finite number, got NaN"),
        ('{"a": Infinity}', "finite number, got Infinity"),
        ("a:1,a:2", "names 'a' twice"),
        ('{"a": 1, "a": 2}', "names 'a' twice"),
        ("a:1,b", "NAME:WEIGHT"),
        ('{"a": "0.5"}', "must be a number, got '0.5'"),
        ('{"a": true}', "must be a number"),
        ("", "empty"),
        ("{oops", "not valid JSON"),
    ],
)
def test_bad_blends_are_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        parse_blend(text)


def test_an_unknown_style_is_refused_listing_the_known_ones(engine: StyleEngine) -> None:
    with pytest.raises(InvalidArgument) as err:
        engine.choose(blend=parse_blend("moss:0.5,starry_nite:0.5"))
    assert "Unknown style 'starry_nite' in the blend" in str(err.value)
    assert "Known styles: ember, moss, tide" in str(err.value)
    with pytest.raises(InvalidArgument, match="Known styles of multi: ember, moss, tide"):
        engine.choose(blend=parse_blend("moss:1,zz:1"), net="multi")


# --- the engine ----------------------------------------------------------------------------------------
def test_listing_shows_each_style_with_its_net(engine: StyleEngine) -> None:
    listed = [(i.name, i.net) for i in engine.styles()]
    assert listed == [("ember", "ember"), ("ember", "multi"), ("moss", "multi"), ("tide", "multi"),
                      ("tiny_a", "tiny_a")]  # fmt: skip
    moss = next(i for i in engine.styles() if i.name == "moss")
    assert (moss.arch, moss.title, moss.licence) == ("mobile2_multi", "Toy painting moss", "CC0")
    assert [i.name for i in engine.models()] == ["ember", "multi", "tiny_a"]


def test_names_resolve_single_nets_first_then_multi_styles(engine: StyleEngine) -> None:
    assert engine.choose(style="ember").net == "ember"  # the single net of that name
    assert engine.choose(style="ember", net="multi").net == "multi"
    tide = engine.choose(style="tide")
    assert tide.net == "multi" and tide.weights is not None and tide.weights.tolist() == [0, 0, 1]
    with pytest.raises(UnknownModel, match="Available: ember, moss, tide, tiny_a"):
        engine.choose(style="nope")
    with pytest.raises(InvalidArgument, match="single-style net"):
        engine.choose(blend=parse_blend("moss:1,tide:1"), net="tiny_a")


def test_one_hot_blend_equals_the_pure_style(engine: StyleEngine, photo: np.ndarray) -> None:
    for style in ("moss", "tide"):
        one_hot = engine.choose(blend=parse_blend(f"{style}:1"))
        assert (one_hot.net, one_hot.style, one_hot.metric_style) == ("multi", style, style)
        by_name = engine.stylize(style, photo)
        assert np.array_equal(engine.stylize(one_hot.net, photo, weights=one_hot.weights), by_name)
    # a zero weight beside it changes nothing either
    padded = engine.choose(blend=parse_blend("moss:0.8,tide:0"))
    assert np.array_equal(
        engine.stylize("multi", photo, weights=padded.weights), engine.stylize("moss", photo)
    )


def test_a_50_50_blend_differs_from_both_and_lies_between(engine: StyleEngine, photo: np.ndarray) -> None:
    moss, tide = engine.stylize("moss", photo), engine.stylize("tide", photo)
    half = engine.choose(blend=parse_blend("moss:1,tide:1"))
    assert half.style == "moss:0.5,tide:0.5" and half.metric_style == "blend"
    mixed = engine.stylize(half.net, photo, weights=half.weights)
    apart = mad(moss, tide)
    assert mad(mixed, moss) > 0.1 * apart and mad(mixed, tide) > 0.1 * apart  # a new picture
    assert mad(mixed, moss) < apart and mad(mixed, tide) < apart  # nearer each than they are to each other


def test_rows_of_one_batch_take_their_own_weights(engine: StyleEngine, photo: np.ndarray) -> None:
    rows = [engine.choose(style=s, net="multi").weights for s in ("moss", "tide")]
    rows.append(engine.choose(blend=parse_blend("moss:1,tide:1")).weights)
    batch = engine.run_batch("multi", [photo] * 3, [w for w in rows if w is not None])
    alone = [engine.run_batch("multi", [photo], [w])[0] for w in rows if w is not None]
    for together, single in zip(batch, alone, strict=True):
        assert mad(together, single) < 0.01  # the same up to ORT's batch-size kernels
    with pytest.raises(InvalidArgument, match="needs its style weights"):
        engine.run_batch("multi", [photo])
    with pytest.raises(InvalidArgument, match="single-style net"):
        engine.run_batch("tiny_a", [photo], [rows[0]])  # type: ignore[list-item]


def test_single_style_nets_are_unchanged(folder: Path, engine: StyleEngine, photo: np.ndarray) -> None:
    alone = StyleEngine.load(folder, providers=("CPUExecutionProvider",), intra_threads=1, names=["tiny_a"])
    assert [i.name for i in alone.styles()] == ["tiny_a"]
    assert alone.styles()[0].net == "tiny_a"
    assert np.array_equal(alone.stylize("tiny_a", photo), engine.stylize("tiny_a", photo))
    by_style = StyleEngine.load(folder, providers=("CPUExecutionProvider",), names=["moss"])
    assert [i.name for i in by_style.models()] == ["multi"]  # names may name a multi net's style


# --- masks and the composite ---------------------------------------------------------------------------
def png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def test_masks_read_alpha_or_luminance_and_keep_the_photos_aspect() -> None:
    rgba = np.zeros((30, 45, 4), np.uint8)
    rgba[:, :20, 3] = 255  # opaque left part: the subject
    alpha = decode_mask(png(rgba, "RGBA"), ImageLimits())
    assert alpha.shape == (30, 45) and alpha[0, 0] == 1.0 and alpha[0, 44] == 0.0
    grey = decode_mask(png(np.full((30, 45), 128, np.uint8), "L"), ImageLimits())
    assert abs(float(grey.mean()) - 128 / 255) < 1e-6
    assert fit_mask(alpha, 60, 90).shape == (60, 90)
    with pytest.raises(InvalidArgument, match=r"mask is 45x30 \(aspect 1.500\) but the photo is 60x60"):
        fit_mask(alpha, 60, 60)
    with pytest.raises(ImageTooLarge, match="megapixels"):
        decode_mask(png(np.zeros((100, 100), np.uint8), "L"), ImageLimits(max_pixels=5000))
    with pytest.raises(InvalidArgument, match="finite values in"):
        fit_mask(np.full((4, 4), 2.0, np.float32), 4, 4)


def column_steps(image: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring columns, over rows and channels: (W - 1,)."""
    return np.abs(np.diff(image.astype(np.float64), axis=1)).mean(axis=(0, 2))


@pytest.mark.parametrize("fraction", [1 / 3, 1 / 2, 2 / 3])
def test_the_mask_composite_has_no_seam(engine: StyleEngine, photo: np.ndarray, fraction: float) -> None:
    fg, bg = engine.stylize("moss", photo), engine.stylize("tide", photo)
    h, w = photo.shape[:2]
    edge = round(w * fraction)
    mask = np.zeros((h, w), np.float32)
    mask[:, :edge] = 1.0
    at_edge = slice(edge - 2, edge + 1)  # the steps into, across and out of the mask's edge column
    elsewhere = np.ones(w - 1, bool)
    elsewhere[edge - 30 : edge + 30] = False
    elsewhere[:4] = elsewhere[-4:] = False  # the nets' own padding rim
    hard = column_steps(composite(fg, bg, mask, sigma=0))
    assert hard[at_edge].max() > column_steps(fg)[elsewhere].max()  # the test can see a seam
    soft = column_steps(composite(fg, bg, mask))
    assert soft[at_edge].max() <= soft[elsewhere].max()
    assert np.array_equal(composite(fg, bg, np.ones((h, w), np.float32)), fg)


def test_saliency_mask_is_the_grad_cam_map_in_0_1(lite0: Backbone, photo: np.ndarray) -> None:
    from service.core.saliency import explain

    mask = saliency_mask(lite0, photo)
    assert mask.shape == photo.shape[:2] and mask.dtype == np.float32
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0 and float(mask.max()) == 1.0
    cam = explain(lite0, [photo], "gradcam").maps[0]
    assert np.all(mask[cam >= 0.65] == 1.0) and np.all(mask[cam <= 0.25] == 0.0)


@pytest.mark.parametrize(("h", "w"), [(341, 512), (683, 1021)])
def test_the_fast_feather_is_the_full_size_gaussian(h: int, w: int) -> None:
    from scipy.ndimage import gaussian_filter

    from service.core.stylize.regions import default_feather, feather

    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1.0
    mask[h // 3 : h // 2, w // 2 : 3 * w // 4] = 1.0  # corners, where a coarse blur would show
    exact = gaussian_filter(mask, default_feather(h, w), mode="nearest")
    assert float(np.abs(feather(mask) - exact).max()) * 255 < 1.0
