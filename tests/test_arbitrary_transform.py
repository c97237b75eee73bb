"""The WCT transform (service/core/arbitrary/transform.py): identity on the content's own statistics,
the style's statistics on the output, the alpha blend, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from service.core.arbitrary.transform import feature_stats, wct
from service.core.errors import InvalidArgument

# Tolerance of the identity, relative to the largest |feature|: the N-sized products run in float32
# (C x C parts in float64), so a few float32 roundings over sums of up to C terms.
IDENTITY_TOL = 1e-4


def features(seed: int, channels: int = 24, side: int = 20, dead: int = 0) -> np.ndarray:
    """ReLU6-like (C, H, W) features with correlated channels; ``dead`` channels are all zero."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(0, 1, (channels, channels))
    f = mix @ rng.normal(0, 1, (channels, side * side)) + rng.uniform(0, 3, (channels, 1))
    f = np.clip(f, 0, 6).astype(np.float32)
    f[:dead] = 0.0
    return f.reshape(channels, side, side)


@pytest.mark.parametrize("dead", [0, 5])
def test_own_statistics_return_the_content(dead: int) -> None:
    f = features(0, dead=dead)
    out = wct(f, feature_stats(f), alpha=1.0)
    assert out.shape == f.shape and out.dtype == np.float32
    assert np.abs(out - f).max() <= IDENTITY_TOL * np.abs(f).max()


def test_output_has_the_style_mean_and_covariance() -> None:
    content, style = features(1), features(2, side=31)
    out = wct(content, feature_stats(style)).reshape(24, -1).astype(np.float64)
    s = style.reshape(24, -1).astype(np.float64)
    np.testing.assert_allclose(out.mean(1), s.mean(1), atol=1e-4)
    np.testing.assert_allclose(np.cov(out), np.cov(s), atol=1e-3 * np.abs(np.cov(s)).max())


def test_alpha_blends_in_feature_space() -> None:
    content, stats = features(3), feature_stats(features(4))
    full = wct(content, stats, 1.0)
    np.testing.assert_allclose(wct(content, stats, 0.0), content)
    np.testing.assert_allclose(wct(content, stats, 0.25), 0.25 * full + 0.75 * content, atol=1e-4)


def test_refusals() -> None:
    with pytest.raises(InvalidArgument, match="channels"):
        wct(features(5, channels=8), feature_stats(features(6)))
    with pytest.raises(InvalidArgument, match="alpha"):
        wct(features(5), feature_stats(features(6)), alpha=1.5)
    with pytest.raises(InvalidArgument, match="N >= 2"):
        feature_stats(np.zeros((4, 1, 1), np.float32))


def test_all_zero_map_colours_to_the_style_mean() -> None:
    stats = feature_stats(features(7))
    out = wct(np.zeros((24, 6, 6), np.float32), stats)
    np.testing.assert_allclose(out, np.broadcast_to(stats.mean[:, None, None], out.shape), atol=1e-6)
