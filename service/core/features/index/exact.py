"""Exact k-nearest neighbours by cosine distance: scikit-learn's brute-force ``NearestNeighbors``.

Brute force computes every query-to-vector distance (one matrix product), so the answer is exact and the
cost is O(N D) per query; below a few tens of thousands of vectors that is faster than building a graph.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from service.core.features.index import check_k, check_vectors


class ExactIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        check_vectors(vectors)
        self.size, self.dimension = vectors.shape
        # n_jobs=1: the server runs this on its own worker threads; joblib pools would fight them.
        self._nn = NearestNeighbors(metric="cosine", algorithm="brute", n_jobs=1)
        self._nn.fit(vectors.astype(np.float32, copy=False))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        check_vectors(queries, self.dimension)
        distances, indices = self._nn.kneighbors(
            queries.astype(np.float32, copy=False), check_k(k, self.size)
        )
        return indices.astype(np.int64), np.clip(distances, 0.0, 2.0).astype(np.float32)
