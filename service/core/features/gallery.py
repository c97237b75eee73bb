"""A gallery: named embedding vectors with a nearest-neighbour index, bounded in size.

The index is rebuilt lazily on the first search after an add (building is cheap next to embedding the
images). ``method="auto"`` uses the exact index up to ``EXACT_UP_TO`` vectors and HNSW above, where exact
search stops being the faster one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.core.errors import InvalidArgument, ResourceExhausted, quoted
from service.core.features.index import METHODS, VectorIndex, build_index, check_vectors

EXACT_UP_TO = 20_000
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Neighbour:
    name: str
    distance: float  # cosine distance, 0 (same direction) .. 2 (opposite)
    index: int  # position in the gallery (insertion order)


class Gallery:
    """Thread-safe: adds and searches may come from several worker threads."""

    def __init__(self, dimension: int, max_items: int, method: str = "auto") -> None:
        if method not in (*METHODS, "auto"):
            raise InvalidArgument(f"Unknown index method {quoted(method)}; use auto, {', '.join(METHODS)}.")
        if max_items < 1:
            raise InvalidArgument(f"max_items must be at least 1, got {max_items}.")
        self.dimension = dimension
        self.max_items = max_items
        self.method = method
        self._names: list[str] = []
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._index: VectorIndex | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors.copy()

    def add(self, names: Sequence[str], vectors: np.ndarray) -> int:
        """Append ``vectors`` (N, D) under ``names``; returns the new size. Over ``max_items`` nothing is
        added and ``ResourceExhausted`` says how many fit."""
        check_vectors(vectors, self.dimension)
        if len(names) != vectors.shape[0]:
            raise InvalidArgument(f"Got {len(names)} names for {vectors.shape[0]} vectors.")
        for name in names:
            if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
                raise InvalidArgument(
                    f"Item names must be 1..{MAX_NAME_CHARS} characters, got {quoted(name)}."
                )
        with self._lock:
            room = self.max_items - len(self._names)
            if len(names) > room:
                raise ResourceExhausted(
                    f"The gallery holds at most {self.max_items} images; {len(self._names)} are in it, "
                    f"so {room} more fit and {len(names)} were sent."
                )
            self._names.extend(names)
            self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32)], axis=0)
            self._index = None
            return len(self._names)

    def search(self, queries: np.ndarray, k: int) -> list[list[Neighbour]]:
        """The ``k`` nearest items of each query row, nearest first."""
        with self._lock:
            if not self._names:
                raise InvalidArgument("The gallery is empty: add images before searching it.")
            if self._index is None:
                method = self.method
                if method == "auto":
                    method = "exact" if len(self._names) <= EXACT_UP_TO else "hnsw"
                self._index = build_index(self._vectors, method)
            index, names = self._index, list(self._names)
        ids, distances = index.search(np.atleast_2d(queries), k)
        return [
            [Neighbour(names[int(i)], float(d), int(i)) for i, d in zip(row_i, row_d, strict=True)]
            for row_i, row_d in zip(ids, distances, strict=True)
        ]
