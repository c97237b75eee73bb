"""Exact k-nearest neighbours by cosine distance: brute force over unit vectors, one matrix product.

Every query-to-vector distance is computed, so the answer is exact and the cost is O(N D) per query.
The gallery is normalised once at build; a query is then one matrix-vector product and an
``argpartition``. scikit-learn's ``NearestNeighbors(metric="cosine", algorithm="brute")`` gives the same
answer but re-normalises the whole gallery on every call: 15-22 queries/s against 137-215 here on 10k x 1280
vectors, one thread (docs/bench/neighbours_cpu.md), so it is the test's reference, not the index.
"""

from __future__ import annotations

import numpy as np

from service.core.features.embed import l2_normalize
from service.core.features.index import check_k, check_vectors


class ExactIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        check_vectors(vectors)
        self.size, self.dimension = vectors.shape
        self._unit = l2_normalize(vectors.astype(np.float32, copy=False))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        check_vectors(queries, self.dimension)
        k = check_k(k, self.size)
        distances = 1.0 - l2_normalize(queries.astype(np.float32, copy=False)) @ self._unit.T
        if k < self.size:  # the k smallest in any order, then sorted: O(N + k log k) per query
            part = np.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(self.size), (distances.shape[0], 1))
        picked = np.take_along_axis(distances, part, axis=1)
        order = np.argsort(picked, axis=1, kind="stable")
        ids = np.take_along_axis(part, order, axis=1)
        return ids.astype(np.int64), np.clip(np.take_along_axis(picked, order, axis=1), 0.0, 2.0).astype(
            np.float32
        )
