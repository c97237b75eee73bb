"""The eval-style distances: per-tap style distances, and what the markdown report says about them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.core.backbones.base import Backbone
from service.core.stylize.evaluate import (
    EvalReport,
    PairResult,
    StyleDistances,
    report_json,
    report_markdown,
    resize_long_side,
)
from service.core.stylize.measures import PictureQuality


def test_style_distance_is_the_mean_of_the_per_tap_distances(
    lite0: Backbone, chelsea: np.ndarray, coffee: np.ndarray
) -> None:
    distances = StyleDistances(lite0, chelsea, 64)
    painting = resize_long_side(chelsea, 64)
    other = resize_long_side(coffee, 64)
    by_tap = distances.style_by_tap(other)
    assert len(by_tap) == len(distances.style_taps) and min(by_tap) > 0
    assert distances._style(other) == pytest.approx(float(np.mean(by_tap)))
    # The painting at the very size its Grams were taken from is at distance 0 at every tap.
    assert max(distances.style_by_tap(painting)) < 1e-6 < min(by_tap)
    ((style_taps, content),) = distances(other, painting)
    assert style_taps == pytest.approx(distances.style_by_tap(painting)) and content > 0


def test_report_shows_where_the_style_gap_is() -> None:
    report = EvalReport(512, 300, "efficientnet_lite0", ("shallow", "deep"), "mid", "cpu", {"m": "CPU"})
    # Two photos: at the shallow tap the fast net is as close as Gatys, at the deep tap 10x off.
    report.pairs += [
        PairResult("m", "a", 5.5, 1.0, 1.0, 1.0, 10.0, True, (1.0, 10.0), (1.0, 1.0)),
        PairResult("m", "b", 15.5, 2.0, 1.0, 1.0, 10.0, True, (1.0, 30.0), (1.0, 3.0)),
    ]
    table = report_markdown(report)
    # style: means 10.5 / 1.5 (ratio 7.00), median of the photos' ratios 5.5 and 7.75: 6.62
    assert "| `m` | 2 | 10.5 | 1.5 | nan | 7.00 | 1 | 1 | 1.00 | 6.62 | 10 | **no** |" in table
    assert "| model | `shallow` | `deep` |" in table
    # means over the photos: 1/1 and 20/2; the deep tap is 20/21 of the fast net's distance
    assert "| `m` | 1.00 (5%) | 10.00 (95%) |" in table
    assert "| `m` | b | 15.5 | 2 | 1 | 1 | 1 / 10 |" in table


def test_report_gives_the_picture_measures_as_medians_over_the_photos() -> None:
    report = EvalReport(512, 300, "efficientnet_lite0", ("t",), "mid", "cpu", {"m": "CPU"})

    def pair(photo: str, structure: float, grid: float, photo_grid: float, drops: float) -> PairResult:
        fast = PictureQuality(structure, grid, photo_grid, {2: grid, 4: 1.0, 8: 0.5}, drops)
        ref = PictureQuality(0.9, photo_grid + 0.3, photo_grid, {2: 1.0, 4: 1.0, 8: 1.0}, float("nan"))
        return PairResult("m", photo, 1.0, 1.0, 1.0, 1.0, 10.0, True, (1.0,), (1.0,), fast, ref)

    # Three photos; one outlier in each measure, which the median ignores.
    report.pairs += [
        pair("a", 0.5, 3.0, 1.0, 0.0),
        pair("b", 0.6, 3.5, 1.5, 2.0),
        pair("c", 0.1, 9.0, 1.2, 50),
    ]
    fast = report.picture_summary("m")
    assert fast is not None and fast.photos == 3
    assert (fast.structure, fast.grid, fast.photo_grid, fast.droplets) == (0.5, 3.5, 1.2, 2.0)
    assert fast.grid_over_photo == pytest.approx(2.3) and fast.peaks == {2: 3.5, 4: 1.0, 8: 0.5}
    table = report_markdown(report)
    # Gatys: structure 0.9, grid = photo grid + 0.3 each, no droplets measured (a dash, not "nan")
    assert (
        "| `m` | 0.50 | 0.90 | 3.50 | 1.50 | 1.20 | +2.30 | +0.30 | 3.50 / 1.00 / 0.50 | 2.0 | - |" in table
    )
    assert "| 0.10 / 0.90 | 9.00 / 1.50 / 1.20 | 50.0 / - |" in table  # photo c's row
    doc = json.loads(json.dumps(report_json(report), allow_nan=False))  # NaN became null
    (model,) = doc["models"]
    assert model["fast_picture"]["grid_over_photo"] == pytest.approx(2.3)
    assert model["gatys_picture"]["droplets"] is None and model["meets_bar"] is True
    assert doc["pairs"][2]["fast_picture"]["grid_peaks"] == {"2": 9.0, "4": 1.0, "8": 0.5}
