#!/usr/bin/env python
"""Nearest-neighbour search on 10k embedding-like vectors: exact brute force (ours and scikit-learn's) against HNSW
(hnswlib) at several ef, one query at a time on one thread, with recall@10 against the exact answer.

The vectors are synthetic (there are not 10k photos here): 1280-d, non-negative like Lite0's pooled ReLU6
features, drawn around 100 cluster centres so that neighbours exist; queries are held-out points of the
same clusters. Writes a Markdown table (default docs/bench/neighbours_cpu.md).

    OMP_NUM_THREADS=1 python scripts/bench_neighbours.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from service.core.features.index.exact import ExactIndex
from service.core.features.index.hnsw import HnswIndex


def vectors(n: int, d: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.gamma(0.5, 1.0, (clusters, d))
    which = rng.integers(0, clusters, n)
    return np.maximum(centres[which] + rng.normal(0, 0.6, (n, d)), 0).astype(np.float32)


def timed_queries(index: ExactIndex | HnswIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    ids = []
    start = time.perf_counter()
    for q in queries:  # one at a time: the service's case (one query image per call)
        ids.append(index.search(q[None, :], k)[0][0])
    return np.stack(ids), len(queries) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/bench/neighbours_cpu.md"))
    args = ap.parse_args()
    data = vectors(args.n + args.queries, args.dim, 100, seed=0)
    base, queries = data[: args.n], data[args.n :]
    rows = []
    t = time.perf_counter()
    exact = ExactIndex(base)
    build = time.perf_counter() - t
    truth, qps = timed_queries(exact, queries, args.k)
    rows.append(("exact (service: unit vectors, one product)", "-", f"{build:.2f}", f"{qps:.0f}", "1.000"))
    from sklearn.neighbors import NearestNeighbors

    class SklearnIndex:  # the library's own brute-force cosine search, for comparison
        def __init__(self, x: np.ndarray) -> None:
            self.nn = NearestNeighbors(metric="cosine", algorithm="brute", n_jobs=1).fit(x)

        def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            d, i = self.nn.kneighbors(q, k)
            return i, d

    t = time.perf_counter()
    sk = SklearnIndex(base)
    build = time.perf_counter() - t
    found, qps = timed_queries(sk, queries, args.k)  # type: ignore[arg-type]
    recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found, truth, strict=True)])
    rows.append(
        (
            "exact (scikit-learn NearestNeighbors brute, cosine)",
            "-",
            f"{build:.2f}",
            f"{qps:.0f}",
            f"{recall:.3f}",
        )
    )
    t = time.perf_counter()
    hnsw = HnswIndex(base)
    build = time.perf_counter() - t
    for ef in (16, 32, 64, 128, 256):
        hnsw.ef = ef
        found, qps = timed_queries(hnsw, queries, args.k)
        recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found, truth, strict=True)])
        rows.append(
            (
                "HNSW (hnswlib, M=16, efC=200)",
                str(max(ef, 2 * args.k)),
                f"{build:.2f}",
                f"{qps:.0f}",
                f"{recall:.3f}",
            )
        )
    lines = [
        "# Nearest neighbours on the CPU",
        "",
        f"`python scripts/bench_neighbours.py`: {args.n} vectors of {args.dim} dimensions (synthetic, 100 clusters,",
        f"non-negative like Lite0's pooled features), {args.queries} held-out queries sent one at a time, k = {args.k},",
        "cosine distance, one thread (`OMP_NUM_THREADS=1`, hnswlib `num_threads=1`). Recall@10 is the share of the",
        "exact top 10 that the index returns. ef below 2k is raised to 2k by the index.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other jobs.",
        "",
        "| index | ef | build s | queries/s | recall@10 |",
        "|---|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in rows],
        "",
        "The service's galleries use the exact index up to 20,000 images (`method=auto`); above that HNSW.",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
