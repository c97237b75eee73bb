"""The eval-style distances: per-tap style distances, and what the markdown report says about them."""

from __future__ import annotations

import numpy as np
import pytest

from service.core.backbones.base import Backbone
from service.core.stylize.evaluate import (
    EvalReport,
    PairResult,
    StyleDistances,
    report_markdown,
    resize_long_side,
)


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
