"""The arbitrary-style engine (service/core/arbitrary/engine.py, cache.py) on tiny random WCT levels:
the painting's statistics cached by sha256 (hit on a repeat, bounded in entries and bytes), the named
styles' options and tiling rules, the CLI, and a clear error when nothing is installed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from service.cli import main
from service.core.arbitrary.cache import StatsCache, stats_bytes
from service.core.arbitrary.engine import ArbitraryOptions, ArbitraryStyleEngine
from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, NotInstalled, UnknownModel
from service.core.imageio import load_image, save_image
from tests.arbitrary_models import TINY_TAPS, install_tiny_levels, painting
from tests.tinymodels import write_tiny_models


@pytest.fixture(scope="module")
def levels_dir(lite0: Backbone, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_tiny_models(tmp_path_factory.mktemp("models"), names=("tiny_a",))
    return install_tiny_levels(folder, lite0)


def load(folder: Path, **kw: object) -> ArbitraryStyleEngine:
    return ArbitraryStyleEngine.load(folder, providers=("CPUExecutionProvider",), intra_threads=1, **kw)  # type: ignore[arg-type]


def test_levels_load_coarse_to_fine_beside_the_named_styles(levels_dir: Path) -> None:
    engine = load(levels_dir)
    assert [lv.tap for lv in engine.levels()] == list(TINY_TAPS) and not engine.load_errors
    assert engine.version == "block3.expand:1+stem:1" and engine.provider == "CPUExecutionProvider"
    from service.core.stylize.engine import StyleEngine

    with StyleEngine.load(levels_dir, providers=("CPUExecutionProvider",), warmup=False) as named:
        assert [s.name for s in named.styles()] == ["tiny_a"] and not named.load_errors
    with pytest.raises(UnknownModel, match=r"block8\.expand"):
        load(levels_dir, levels=("block8.expand",))
    assert [lv.tap for lv in load(levels_dir, levels=("stem",)).levels()] == ["stem"]


def test_stylize_is_the_size_of_the_photo_and_follows_the_options(levels_dir: Path) -> None:
    engine = load(levels_dir)
    photo, art = painting(1, (53, 71)), painting(2)
    out = engine.stylize_with(photo, art)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(engine.stylize_with(photo, art, ArbitraryOptions(strength=0.0)), photo)
    assert engine.stylize_with(photo, art, ArbitraryOptions(max_side=40)).shape == (30, 40, 3)
    assert not np.array_equal(engine.stylize_with(photo, art, ArbitraryOptions(style_size=64)), out)
    with pytest.raises(InvalidArgument, match="style_size"):
        engine.stylize_with(photo, art, ArbitraryOptions(style_size=4096))


def test_half_size_levels_run_the_coarse_level_on_the_halved_image(levels_dir: Path) -> None:
    import torch

    from service.core.arbitrary import engine as eng

    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 6, 10)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=2, mode="bilinear")
    assert np.abs(eng._double(x) - ref.numpy()).max() < 1e-4  # the x2 enlargement is PyTorch's bilinear
    assert np.allclose(eng._half(np.repeat(np.repeat(x, 2, 2), 2, 3)), x)  # 2x2 means undo a x2 repeat
    full, half = load(levels_dir), load(levels_dir, half_levels=5)  # asks for more than there are
    photo, art = painting(5, (53, 71)), painting(6)
    seen: list[tuple[str, tuple[int, ...]]] = []
    through = half._through

    def spy(levels: list[eng._Level], x: np.ndarray, stats: eng.StyleStats) -> np.ndarray:
        seen.extend((lv.info.tap, x.shape) for lv in levels)
        return through(levels, x, stats)

    half._through = spy  # type: ignore[method-assign]
    out = half.stylize_with(photo, art)
    # 53x71 is padded to 64x96 (a multiple of 32); only the coarse level runs at half size, never the finest
    assert seen == [("block3.expand", (1, 3, 32, 48)), ("stem", (1, 3, 64, 96))]
    assert out.shape == photo.shape and not np.array_equal(out, full.stylize_with(photo, art))
    # the painting's statistics of the half-size level come from the painting at half the style size
    assert half.painting_stats(art, 64)["block3.expand"].mean.shape == (144,)
    big, small = full.painting_stats(art, 64), full.painting_stats(art, 32)
    assert np.allclose(half.painting_stats(art, 64)["block3.expand"].mean, small["block3.expand"].mean)
    assert np.allclose(half.painting_stats(art, 64)["stem"].mean, big["stem"].mean)
    detail = load(levels_dir, half_levels=1, detail_octaves=2).stylize_with(photo, art)
    assert detail.shape == photo.shape and not np.array_equal(detail, out)
    with pytest.raises(InvalidArgument, match="half_levels"):
        load(levels_dir, half_levels=-1)
    with pytest.raises(InvalidArgument, match="detail_octaves"):
        load(levels_dir, detail_octaves=6)


def test_detail_octaves_give_the_coarse_picture_the_photos_fine_band() -> None:
    from service.core.arbitrary import engine as eng

    rng = np.random.default_rng(1)
    photo = rng.uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)
    render = eng._low(rng.uniform(0, 255, (1, 3, 64, 96)).astype(np.float32), 3)  # a blurred "render"

    def mix(x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return eng._low(x, 2) + p - eng._low(p, 2)

    def fine(x: np.ndarray) -> float:  # energy of the pixel-to-pixel differences
        return float(np.square(np.diff(x, axis=3)).mean())

    assert np.allclose(mix(photo, photo), photo, atol=1e-3)  # the photo itself comes back unchanged
    flat = np.full_like(photo, 128.0)
    assert np.allclose(mix(render, flat), eng._low(render, 2), atol=1e-3)  # a flat photo adds no detail
    # the photo's fine band is what the mix gains: far more pixel-scale detail than the blurred render
    assert fine(mix(render, photo)) > 10 * fine(render)
    # and its coarse band stays the render's, not the photo's
    drift = np.abs(eng._low(mix(render, photo), 3) - eng._low(render, 3)).mean()
    assert drift < 0.5 * np.abs(eng._low(photo, 3) - eng._low(render, 3)).mean()
    assert np.array_equal(eng._low(photo, 0), photo)


def test_tiling_applies_above_the_threshold(levels_dir: Path) -> None:
    tiled = load(levels_dir, tile_threshold=64, tile_size=48, tile_overlap=8)
    photo, art = painting(3, (70, 100)), painting(4)
    runs: list[int] = []
    stats = tiled.painting_stats(art)
    out = tiled.stylize(photo, stats, on_run=lambda n, s: runs.append(n))
    assert out.shape == photo.shape and len(runs) > 1  # one run per tile


def test_cache_hits_on_a_repeated_painting(levels_dir: Path) -> None:
    engine = load(levels_dir)
    calls: list[int] = []

    def decode() -> np.ndarray:
        calls.append(1)
        return painting(5)

    first, hit1 = engine.style_stats("a" * 64, 512, decode)
    second, hit2 = engine.style_stats("a" * 64, 512, decode)
    assert (hit1, hit2) == (False, True) and len(calls) == 1 and second is first
    _, hit3 = engine.style_stats("a" * 64, 256, decode)  # another style size is another entry
    assert not hit3 and len(calls) == 2
    info = engine.cache_info()
    assert (info.entries, info.hits, info.misses) == (2, 1, 2)


def test_cache_stays_within_its_bounds(levels_dir: Path) -> None:
    engine = load(levels_dir)
    one = stats_bytes(engine.painting_stats(painting(6)))
    cache = StatsCache(max_entries=3, max_bytes=int(2.5 * one))
    for i in range(6):
        cache.put(f"k{i}", engine.painting_stats(painting(6 + i)))
        assert cache.info().bytes <= cache.max_bytes and cache.info().entries <= 2
    assert cache.get("k5") is not None and cache.get("k0") is None  # least recently used went first
    by_count = StatsCache(max_entries=2, max_bytes=100 * one)
    stats = engine.painting_stats(painting(6))
    for key in ("a", "b", "a", "c"):  # "a" used again, so "b" is the one dropped
        if by_count.get(key) is None:
            by_count.put(key, stats)
    assert by_count.get("a") is not None and by_count.get("b") is None and by_count.info().entries == 2
    tiny = StatsCache(max_entries=8, max_bytes=one // 2)  # an entry above the whole budget is not kept
    tiny.put("big", stats)
    assert tiny.info().entries == 0 and tiny.info().bytes == 0


def test_cache_is_thread_safe(levels_dir: Path) -> None:
    engine = load(levels_dir)
    stats = engine.painting_stats(painting(7))
    cache = StatsCache(max_entries=4, max_bytes=10 * stats_bytes(stats))

    def work(t: int) -> None:
        for i in range(200):
            cache.get_or_compute(f"{(t + i) % 7}", lambda: stats)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    info = cache.info()
    assert info.entries <= 4 and info.bytes == info.entries * stats_bytes(stats)
    assert info.hits + info.misses == 800


def test_nothing_installed_says_so(tmp_path: Path) -> None:
    folder = write_tiny_models(tmp_path, names=("tiny_a",))
    engine = load(folder)
    assert not engine.installed
    with pytest.raises(NotInstalled, match="No arbitrary-style model is installed"):
        engine.stylize_with(painting(1), painting(2))


def test_cli_stylize_with_a_painting(
    levels_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, art, out = tmp_path / "photo.png", tmp_path / "art.png", tmp_path / "out.png"
    save_image(painting(8, (40, 56)), photo)
    save_image(painting(9), art)
    args = ["stylize", str(photo), "--style-image", str(art), "-o", str(out), "--models-dir", str(levels_dir)]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["style"] == "custom" and report["version"] == "block3.expand:1+stem:1"
    assert load_image(out).shape == (40, 56, 3)
    assert main([*args, "--style-size", "9999"]) == 2
    assert "style_size" in capsys.readouterr().err
    bare = write_tiny_models(tmp_path / "bare", names=("tiny_a",))
    assert (
        main(["stylize", str(photo), "--style-image", str(art), "-o", str(out), "--models-dir", str(bare)])
        == 2
    )
    assert "No arbitrary-style model is installed" in capsys.readouterr().err
