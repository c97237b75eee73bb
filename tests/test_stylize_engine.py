"""The ONNX Runtime style engine, manifest, tiling and colour handling, on tiny seeded models."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from service.core.errors import InvalidArgument, ModelLoadError, UnknownModel
from service.core.stylize.color import blend, preserve_color, rgb_to_yiq
from service.core.stylize.engine import StyleEngine, StylizeOptions
from service.core.stylize.manifest import (
    ManifestEntry,
    ModelCard,
    add_to_manifest,
    read_card,
    read_manifest,
    sha256_file,
    write_card,
)
from service.core.stylize.tiling import run_tiled, tile_starts, tile_weights
from tests.tinymodels import reference_output, write_tiny_models

CPU = ("CPUExecutionProvider",)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"), corrupt=("broken",), mismatch=("swapped",))


@pytest.fixture(scope="module")
def engine(models_dir: Path) -> Iterator[StyleEngine]:
    eng = StyleEngine.load(models_dir, providers=CPU, tile_threshold=256, tile_size=192, tile_overlap=48)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:384])  # 384 x 512: tiled with the engine's settings


# --- loading -------------------------------------------------------------------------------------------
def test_bad_models_are_reported_and_the_others_serve(engine: StyleEngine) -> None:
    assert [s.name for s in engine.styles()] == ["tiny_a", "tiny_b"]
    assert set(engine.load_errors) == {"broken", "swapped"}
    assert "cannot load" in engine.load_errors["broken"]
    assert "sha256 mismatch" in engine.load_errors["swapped"]
    out = engine.stylize("tiny_b", np.full((32, 48, 3), 90, np.uint8))
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8


def test_unknown_style_is_refused_with_the_known_names(engine: StyleEngine) -> None:
    with pytest.raises(UnknownModel) as err:
        engine.stylize("starry", np.zeros((32, 32, 3), np.uint8))
    assert "tiny_a" in str(err.value) and "tiny_b" in str(err.value)
    assert err.value.available == ["tiny_a", "tiny_b"]
    with pytest.raises(UnknownModel):
        engine.info("broken")


def test_provider_in_use_is_reported_and_a_fallback_is_logged(
    models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime as ort

    with caplog.at_level(logging.WARNING, logger="service.core.stylize.engine"):
        eng = StyleEngine.load(models_dir, warmup=False)  # CUDA first, as in production
    info = eng.info("tiny_a")
    assert info.provider in ort.get_available_providers()
    assert info.precision == "fp32"
    assert info.title == "Tiny test style tiny_a" and info.card["licence"] == "CC0"
    if info.provider != "CUDAExecutionProvider":  # no GPU here: the fallback must be said out loud
        assert any(info.provider in r.getMessage() for r in caplog.records)
    eng.close()


def test_warmup_is_timed(engine: StyleEngine) -> None:
    info = engine.info("tiny_a")
    assert info.load_s > 0 and info.warmup_s > 0


def test_missing_manifest_is_a_load_error(tmp_path: Path) -> None:
    eng = StyleEngine.load(tmp_path, providers=CPU)
    assert eng.styles() == [] and "manifest.json" in eng.load_errors


# --- outputs -------------------------------------------------------------------------------------------
def test_output_matches_the_onnx_reference_evaluator(engine: StyleEngine, models_dir: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    ref = reference_output(onnx.load(models_dir / "tiny_a.tiny.onnx"), image.transpose(2, 0, 1)[None])
    expected = np.clip(np.rint(ref[0].transpose(1, 2, 0)), 0, 255)
    got = engine.stylize("tiny_a", image).astype(np.float64)
    assert np.abs(got - expected).max() <= 1  # rounding of float differences only
    assert np.abs(got - image).mean() > 5  # the model does change the picture


def test_strength_zero_returns_the_content(engine: StyleEngine, chelsea: np.ndarray) -> None:
    out = engine.stylize("tiny_a", chelsea, StylizeOptions(strength=0.0))
    np.testing.assert_array_equal(out, chelsea)


def test_strength_blends_linearly(engine: StyleEngine, coffee: np.ndarray) -> None:
    small = coffee[::4, ::4].copy()
    full = engine.stylize("tiny_a", small).astype(np.float64)
    half = engine.stylize("tiny_a", small, StylizeOptions(strength=0.5)).astype(np.float64)
    assert np.abs(half - (full + small) / 2).max() <= 1.0


def test_preserve_color_keeps_the_content_chroma(engine: StyleEngine, chelsea: np.ndarray) -> None:
    content = chelsea[::2, ::2].copy()
    plain = engine.stylize("tiny_b", content)
    kept = engine.stylize("tiny_b", content, StylizeOptions(preserve_color=True))
    iq_content = rgb_to_yiq(content)[..., 1:]
    assert np.abs(rgb_to_yiq(plain)[..., 1:] - iq_content).mean() > 3  # the net does shift colours
    diff = np.abs(rgb_to_yiq(kept)[..., 1:] - iq_content)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) < 1.5  # equal up to uint8 rounding / gamut clips
    # ... and the luminance is the stylised one.
    assert np.abs(rgb_to_yiq(kept)[..., 0] - rgb_to_yiq(plain)[..., 0]).mean() < 1.0


def test_max_side_downscales(engine: StyleEngine, chelsea: np.ndarray) -> None:
    out = engine.stylize("tiny_a", chelsea, StylizeOptions(max_side=100))
    assert max(out.shape[:2]) == 100
    assert out.shape[1] / out.shape[0] == pytest.approx(chelsea.shape[1] / chelsea.shape[0], rel=0.02)


def test_run_batch_equals_per_image_runs(engine: StyleEngine) -> None:
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    batched = engine.run_batch("tiny_a", images)
    for image, out in zip(images, batched, strict=True):
        np.testing.assert_allclose(out, engine.run_batch("tiny_a", [image])[0], atol=1)


def test_split_pipeline_equals_stylize(engine: StyleEngine, coffee: np.ndarray) -> None:
    opts = StylizeOptions(strength=0.7, preserve_color=True, max_side=120)
    prepared = engine.prepare(coffee, opts)
    assert engine.batchable(prepared, opts)
    split = engine.finish(prepared, engine.run_batch("tiny_b", [prepared])[0], opts)
    np.testing.assert_array_equal(split, engine.stylize("tiny_b", coffee, opts))


def test_only_a_single_whole_image_run_is_batchable(
    engine: StyleEngine, coffee: np.ndarray, astronaut: np.ndarray
) -> None:
    """``batchable`` says exactly when ``stylize`` makes one run over the whole image (``on_run`` counts)."""

    def runs_of(image: np.ndarray, opts: StylizeOptions) -> list[int]:
        runs: list[int] = []
        engine.stylize("tiny_a", image, opts, on_run=lambda images, seconds: runs.append(images))
        return runs

    whole, zero = StylizeOptions(max_side=120), StylizeOptions(strength=0.0, max_side=120)
    assert runs_of(coffee, whole) == [1] and engine.batchable(engine.prepare(coffee, whole), whole)
    assert runs_of(coffee, zero) == [] and not engine.batchable(engine.prepare(coffee, zero), zero)
    tiled = StylizeOptions()  # the astronaut is above this engine's tile threshold
    assert sum(runs_of(astronaut, tiled)) > 1 and not engine.batchable(astronaut, tiled)


@pytest.mark.parametrize(
    "options",
    [StylizeOptions(strength=1.5), StylizeOptions(strength=-0.1), StylizeOptions(max_side=4)],
)
def test_bad_options_are_invalid_argument(engine: StyleEngine, options: StylizeOptions) -> None:
    with pytest.raises(InvalidArgument):
        engine.stylize("tiny_a", np.zeros((32, 32, 3), np.uint8), options)


@pytest.mark.parametrize(
    "image",
    [np.zeros((32, 32), np.uint8), np.zeros((32, 32, 3), np.float32), np.zeros((8, 64, 3), np.uint8)],
)
def test_bad_images_are_invalid_argument(engine: StyleEngine, image: np.ndarray) -> None:
    with pytest.raises(InvalidArgument):
        engine.stylize("tiny_a", image)


def test_run_batch_refuses_mixed_sizes(engine: StyleEngine) -> None:
    with pytest.raises(InvalidArgument, match="share a size"):
        engine.run_batch("tiny_a", [np.zeros((32, 32, 3), np.uint8), np.zeros((32, 48, 3), np.uint8)])


# --- tiling --------------------------------------------------------------------------------------------
def _hard_stitched(engine: StyleEngine, image: np.ndarray, tile: int) -> np.ndarray:
    out = np.zeros_like(image)
    for y in range(0, image.shape[0], tile):
        for x in range(0, image.shape[1], tile):
            out[y : y + tile, x : x + tile] = engine.run_batch("tiny_a", [image[y : y + tile, x : x + tile]])[
                0
            ]
    return out


def _worst_step_ratio(out: np.ndarray, ref: np.ndarray, columns: list[int]) -> float:
    """Largest ratio of the mean |column step| of ``out`` to that of ``ref`` at the given boundaries."""

    def step(img: np.ndarray, c: int) -> float:
        g = img.astype(np.float64).mean(axis=2)
        return float(np.abs(g[:, c] - g[:, c - 1]).mean())

    return max((step(out, c) + 1.0) / (step(ref, c) + 1.0) for c in columns)


def test_tiling_leaves_no_seam(engine: StyleEngine, astronaut: np.ndarray) -> None:
    assert engine.needs_tiling(astronaut)
    tiled = engine.stylize("tiny_a", astronaut)
    untiled = engine.run_batch("tiny_a", [astronaut])[0]
    # Bounded difference: each tile's instance norm sees only its own statistics, nothing worse.
    assert np.abs(tiled.astype(np.float64) - untiled).mean() < 10
    # No step where tiles start or end (interior boundaries only) ...
    starts = tile_starts(astronaut.shape[1], engine.tile_size, engine.tile_overlap)
    edges = [s for s in starts if s > 0] + [s + engine.tile_size for s in starts[:-1]]
    assert _worst_step_ratio(tiled, untiled, edges) < 1.5
    # ... whereas butting tiles together without overlap shows one: the check can fail.
    hard = _hard_stitched(engine, astronaut, engine.tile_size)
    assert _worst_step_ratio(hard, untiled, [engine.tile_size, 2 * engine.tile_size]) > 3


def test_tiling_a_pointwise_function_is_exact() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)
    out = run_tiled(image, lambda tiles: [255 - t for t in tiles], tile_size=128, overlap=32, batch_size=3)
    np.testing.assert_array_equal(out, 255 - image)


def test_tile_layout_covers_with_overlap() -> None:
    for length, tile, overlap in [(1000, 256, 32), (257, 256, 64), (4096, 1024, 64), (100, 256, 8)]:
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + min(tile, length) == length
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    with pytest.raises(InvalidArgument):
        tile_starts(1000, 64, 64)


def test_tile_weights_sum_to_one_across_an_exact_overlap() -> None:
    left = tile_weights(4, 96, 32, False, False, False, True)[0]
    right = tile_weights(4, 96, 32, False, False, True, False)[0]
    np.testing.assert_allclose(left[-32:] + right[:32], 1.0)
    assert left[-1] < 0.01 and left[0] == 1.0


# --- colour helpers ------------------------------------------------------------------------------------
def test_blend_and_preserve_color_check_their_inputs() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InvalidArgument):
        blend(a, np.zeros((8, 9, 3), np.uint8), 0.5)
    with pytest.raises(InvalidArgument):
        preserve_color(a, np.zeros((4, 8, 3), np.uint8))
    grey = np.full((8, 8, 3), 200, np.uint8)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    out = preserve_color(grey, red)  # red's luminance, grey's (zero) chroma -> a grey
    assert np.ptp(out[0, 0].astype(int)) <= 1


# --- manifest and cards --------------------------------------------------------------------------------
def test_add_to_manifest_replaces_by_name(tmp_path: Path) -> None:
    e1 = ManifestEntry("a", "a", "mobile", "1", "a.onnx", "0" * 64, "a.json")
    add_to_manifest(tmp_path, e1)
    add_to_manifest(tmp_path, ManifestEntry("b", "b", "johnson", "1", "b.onnx", "1" * 64, "b.json"))
    add_to_manifest(tmp_path, ManifestEntry("a", "a", "mobile", "2", "a.onnx", "2" * 64, "a.json"))
    entries = read_manifest(tmp_path)
    assert [(e.name, e.version) for e in entries] == [("a", "2"), ("b", "1")]
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write leaves nothing behind


def test_malformed_manifest_entries_are_reported(tmp_path: Path) -> None:
    doc = {"version": 1, "models": [{"name": "x"}, {"name": "../evil", "style": "s", "arch": "a",
           "version": "1", "file": "../../etc/passwd", "sha256": "0", "card": "c.json"}]}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    errors: dict[str, str] = {}
    assert read_manifest(tmp_path, errors=errors) == []
    assert "lacks" in errors["x"] and "inside the folder" in errors["../evil"]
    with pytest.raises(ModelLoadError):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        read_manifest(tmp_path)


def test_card_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    card = ModelCard("a", "mobile", "1", title="The Starry Night", year="1889", extra={"notes": "x"})
    write_card(tmp_path / "a.json", card)
    assert read_card(tmp_path / "a.json") == card
    (tmp_path / "b.bin").write_bytes(b"abc")
    assert (
        sha256_file(tmp_path / "b.bin") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_a_model_that_fails_its_warmup_is_skipped(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    # Loads fine and its input is fixed at the sanity probe's size (so it passes the probe), but the warm-up
    # at 64 px fails, so it must not be listed.
    from service.core.stylize.probe import PROBE_HEIGHT, PROBE_WIDTH

    shape = [1, 3, PROBE_HEIGHT, PROBE_WIDTH]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("input", "output")]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "fixed", [io[0]], [io[1]]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_tiny_models(tmp_path, names=("tiny_a",))
    (tmp_path / "fixed.onnx").write_bytes(model.SerializeToString())
    write_card(tmp_path / "fixed.json", ModelCard("fixed", "tiny", "1"))
    add_to_manifest(
        tmp_path,
        ManifestEntry(
            "fixed", "fixed", "tiny", "1", "fixed.onnx", sha256_file(tmp_path / "fixed.onnx"), "fixed.json"
        ),
    )
    eng = StyleEngine.load(tmp_path, providers=CPU)
    assert [s.name for s in eng.styles()] == ["tiny_a"]
    assert "warm-up" in eng.load_errors["fixed"]


def test_a_model_that_fails_the_sanity_probe_is_skipped(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    # Its input is fixed at 32x32: the probe's 32x48 run fails, even with warm-up off.
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 32, 32]) for n in ("input", "output")]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "fixed", [io[0]], [io[1]]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_tiny_models(tmp_path, names=("tiny_a",))
    (tmp_path / "fixed.onnx").write_bytes(model.SerializeToString())
    write_card(tmp_path / "fixed.json", ModelCard("fixed", "tiny", "1"))
    add_to_manifest(
        tmp_path,
        ManifestEntry(
            "fixed", "fixed", "tiny", "1", "fixed.onnx", sha256_file(tmp_path / "fixed.onnx"), "fixed.json"
        ),
    )
    eng = StyleEngine.load(tmp_path, providers=CPU, warmup=False)
    assert [s.name for s in eng.styles()] == ["tiny_a"]
    assert "sanity probe" in eng.load_errors["fixed"]


def test_tiles_start_on_the_alignment_grid() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (301, 413, 3), dtype=np.uint8)  # sizes off the grid: padded, then cropped
    seen: list[tuple[int, int]] = []

    def fn(tiles: list[np.ndarray]) -> list[np.ndarray]:
        seen.extend(t.shape[:2] for t in tiles)
        return [255 - t for t in tiles]

    out = run_tiled(image, fn, tile_size=128, overlap=16, align=8)
    np.testing.assert_array_equal(out, 255 - image)
    assert set(seen) == {(128, 128)}
    for length in (301 + 3, 413 + 3):  # the padded lengths: length - tile is a multiple of 8
        assert all(s % 8 == 0 for s in tile_starts(length, 128, 16, align=8))
    with pytest.raises(InvalidArgument, match="multiple of align"):
        tile_starts(301, 128, 16, align=8)
