"""scripts/contact_sheet.py: one tile per served style, and a multi net's style that shares a single net's
name painted by the multi net (by name alone the engine would pick the single net, and the sheet would show
one picture twice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.core.stylize.engine import StyleEngine, StylizeOptions
from tests.scripts_loader import load_script
from tests.tinymodels import write_tiny_models
from tests.tinymulti import MULTI_STYLES, write_tiny_multi

TILE = 48
STRIP = 22  # the caption strip under each tile (contact_sheet._label)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_multi(write_tiny_models(tmp_path_factory.mktemp("sheet"), names=("moss",)))


def _tile(sheet: Image.Image, index: int, columns: int) -> np.ndarray:
    w, h = TILE, TILE + STRIP
    left, top = (index % columns) * w, (index // columns) * h
    return np.asarray(sheet)[top : top + TILE, left : left + TILE].astype(int)


def test_every_style_has_its_tile_and_the_multi_nets_moss_is_the_multi_nets(
    models: Path, chelsea: np.ndarray
) -> None:
    content = np.asarray(Image.fromarray(chelsea).resize((TILE, TILE)))
    sheet = load_script("contact_sheet").build_sheet(content, models, TILE, 3)
    engine = StyleEngine.load(models, providers=("CPUExecutionProvider",), warmup=False)
    infos = engine.styles()
    assert [(i.name, i.net) for i in infos if i.name == "moss"] == [("moss", "moss"), ("moss", "multi")]
    tiles = 1 + len(infos)  # the original, then one per style
    assert sheet.size == (3 * TILE, -(-tiles // 3) * (TILE + STRIP))
    options = StylizeOptions(max_side=TILE)
    with engine:
        single = engine.stylize("moss", content, options).astype(int)
        choice = engine.choose(style="moss", net="multi")
        multi = engine.stylize(choice.net, content, options, weights=choice.weights).astype(int)
    assert np.abs(single - multi).mean() > 5  # the two nets paint moss differently: the test can fail
    at = {(i.name, i.net): k + 1 for k, i in enumerate(infos)}
    # Drawn as a JPEG-free PIL image, so the tiles are the renders to the pixel.
    assert np.array_equal(_tile(sheet, at[("moss", "moss")], 3), single)
    assert np.array_equal(_tile(sheet, at[("moss", "multi")], 3), multi)
    assert len({k for k in at if k[1] == "multi"}) == len(MULTI_STYLES)
