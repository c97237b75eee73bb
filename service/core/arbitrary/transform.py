"""The whitening and colouring transform (WCT) of Li et al., NeurIPS 2017, "Universal Style Transfer via
Feature Transforms" (arXiv:1705.08086, section 3.1), in numpy.

For content features ``f_c`` (C x N, N = H * W positions) and style features ``f_s``:

* whitening: ``w = E_c D_c^(-1/2) E_c^T (f_c - m_c)``, with ``E_c D_c E_c^T`` the eigendecomposition of the
  content covariance, so ``w`` has identity covariance and keeps the content's layout;
* colouring: ``f_cs = E_s D_s^(1/2) E_s^T w + m_s``, so ``f_cs`` has the style's mean and covariance, i.e.
  exactly the (centred) Gram statistics a Gatys loss on that tap compares;
* blend: ``alpha * f_cs + (1 - alpha) * f_c`` (the paper's style weight, eq. 3).

Eigen-directions whose eigenvalue is below ``rel_eps`` times the largest are dropped on both sides, as the
paper drops those below 1e-5: a ReLU6 tap has dead channels, and ``D^(-1/2)`` of a near-zero variance
would amplify noise by orders of magnitude.

Why numpy (``numpy.linalg.eigh``) and not ONNX: the transform is two C x C symmetric eigendecompositions
(C <= 480 at the deepest tap used) and one (C x C) x (C x N) product per tap. ONNX has no eigendecomposition
operator in any opset, so it would have to be an iterative approximation (Newton-Schulz or power
iteration unrolled in the graph), whose accuracy depends on the spectrum and would need its own parity
argument; LAPACK's ``syevd`` through numpy is exact to float64, takes a few milliseconds at C = 480, and
runs on the CPU beside ONNX Runtime either way (the product is the only O(N) part, done in float32). The
style side (its mean and colouring matrix) is computed once per painting and cached (``cache.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.core.errors import InvalidArgument

REL_EPS = 1e-5  # eigenvalues below this fraction of the largest are dropped (paper: 1e-5 absolute on VGG)
ABS_EPS = 1e-10  # and never one below this, whatever the scale (an all-zero map has no directions at all)


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance roots of one feature map: what colouring needs, what whitening needs."""

    mean: np.ndarray  # (C,) float32
    colour: np.ndarray  # (C, C) float32: E D^(1/2) E^T over the kept directions
    rank: int  # directions kept

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.mean.nbytes + self.colour.nbytes)


def _flat(features: np.ndarray) -> np.ndarray:
    """(C, H, W) or (C, N) -> (C, N) float32."""
    if features.ndim == 3:
        features = features.reshape(features.shape[0], -1)
    if features.ndim != 2 or features.shape[1] < 2:
        raise InvalidArgument(f"WCT needs (C, H, W) or (C, N) features with N >= 2, got {features.shape}.")
    return np.ascontiguousarray(features, dtype=np.float32)


def _eig(flat: np.ndarray, rel_eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (C,) float64, kept eigenvalues (k,) and eigenvectors (C, k) of the covariance of ``flat``."""
    mean = flat.mean(axis=1, dtype=np.float64)
    centred = flat - mean.astype(np.float32)[:, None]
    # The (C x N) product in float32 (the only O(N) step), the C x C result in float64 for eigh.
    cov = (centred @ centred.T).astype(np.float64) / (flat.shape[1] - 1)
    values, vectors = np.linalg.eigh(cov)
    keep = values > max(ABS_EPS, rel_eps * float(values[-1]))
    return mean, values[keep], vectors[:, keep]


def feature_stats(features: np.ndarray, rel_eps: float = REL_EPS) -> FeatureStats:
    """A feature map's mean and colouring matrix ``E D^(1/2) E^T`` (the style side of the transform)."""
    mean, values, vectors = _eig(_flat(features), rel_eps)
    colour = (vectors * np.sqrt(values)) @ vectors.T
    return FeatureStats(mean.astype(np.float32), colour.astype(np.float32), int(values.size))


def wct(content: np.ndarray, style: FeatureStats, alpha: float = 1.0, rel_eps: float = REL_EPS) -> np.ndarray:
    """Whiten ``content`` ((C, H, W) features) and colour it with ``style``; blend with weight ``alpha``.

    Returns float32 features of the content's shape. Given the content's own statistics
    (``feature_stats(content)``) and ``alpha=1`` it returns the content, up to the dropped near-null
    directions and float32 rounding (``tests/test_arbitrary_transform.py`` states the tolerance).
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidArgument(f"alpha must be between 0 and 1, got {alpha}.")
    shape = content.shape
    flat = _flat(content)
    if flat.shape[0] != style.channels:
        raise InvalidArgument(f"Content has {flat.shape[0]} channels, the style statistics {style.channels}.")
    if alpha == 0.0:
        return flat.reshape(shape)
    mean, values, vectors = _eig(flat, rel_eps)
    whiten = (vectors / np.sqrt(values)) @ vectors.T  # E D^(-1/2) E^T, (C, C) float64
    # Colouring and whitening fold into one C x C matrix, so the N-sized product runs once.
    transform = (style.colour.astype(np.float64) @ whiten).astype(np.float32)
    offset = (style.mean.astype(np.float64) - transform.astype(np.float64) @ mean).astype(np.float32)
    out = transform @ flat + offset[:, None]
    if alpha != 1.0:
        out = alpha * out + (1.0 - alpha) * flat
    return out.reshape(shape)
