"""Nearest-neighbour indexes over embedding vectors, by cosine distance (1 - cosine similarity).

``exact``: brute force over unit vectors (every distance computed; the answer is exact).
``hnsw``: hnswlib's Hierarchical Navigable Small World graph (approximate; sub-linear queries).
Both answer ``search(queries, k) -> (indices, distances)`` with rows sorted nearest first.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from service.core.errors import InvalidArgument

METHODS: tuple[str, ...] = ("exact", "hnsw")


class VectorIndex(Protocol):
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def build_index(vectors: np.ndarray, method: str = "exact", seed: int = 0) -> VectorIndex:
    """An index of the rows of ``vectors`` (N, D) float32 for ``method`` (see ``METHODS``)."""
    check_vectors(vectors)
    if method == "exact":
        from service.core.features.index.exact import ExactIndex

        return ExactIndex(vectors)
    if method == "hnsw":
        from service.core.features.index.hnsw import HnswIndex

        return HnswIndex(vectors, seed=seed)
    raise InvalidArgument(f"Unknown index method {method!r}; use one of {', '.join(METHODS)}.")


def check_vectors(vectors: np.ndarray, dimension: int | None = None) -> None:
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or vectors.shape[0] < 1:
        raise InvalidArgument(
            f"Expected an (N, D) array of vectors, got shape {getattr(vectors, 'shape', None)}."
        )
    if dimension is not None and vectors.shape[1] != dimension:
        raise InvalidArgument(f"Vectors have dimension {vectors.shape[1]}; this index holds {dimension}.")
    if not np.isfinite(vectors).all():
        raise InvalidArgument("Vectors must be finite (no NaN or infinity).")


def check_k(k: int, size: int) -> int:
    """``k`` checked (>= 1) and capped at the number of indexed vectors."""
    if k < 1:
        raise InvalidArgument(f"k must be at least 1, got {k}.")
    return min(k, size)
