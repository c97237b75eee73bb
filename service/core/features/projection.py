"""2-D projections of embedding vectors for feature maps.

* ``pca``: principal component analysis (Pearson 1901; scikit-learn's ``PCA``): the two directions of
  largest variance; linear, fast, keeps global layout.
* ``tsne``: t-SNE (van der Maaten & Hinton 2008, "Visualizing Data using t-SNE", JMLR 9): keeps local
  neighbourhoods, so clusters of similar images separate; distances between clusters mean little.
* ``umap``: UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426), via the optional ``umap-learn``
  package; like t-SNE for neighbourhoods, faster on large sets.

Vectors are L2-normalised first, so the map reflects cosine geometry like the nearest-neighbour search.
Every method is seeded: the same vectors and seed give the same map.
"""

from __future__ import annotations

import numpy as np

from service.core.errors import InvalidArgument
from service.core.features.embed import l2_normalize
from service.core.features.index import check_vectors

METHODS: tuple[str, ...] = ("pca", "tsne", "umap")


def umap_available() -> bool:
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, D) vectors -> (N, 2) float32 coordinates, each axis scaled to [0, 1]."""
    check_vectors(vectors)
    n = vectors.shape[0]
    if method not in METHODS:
        raise InvalidArgument(f"Unknown map method {method!r}; use one of {', '.join(METHODS)}.")
    if n < 3:
        raise InvalidArgument(f"A feature map needs at least 3 images, got {n}.")
    x = l2_normalize(vectors.astype(np.float32))
    if method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        # Perplexity must stay below the number of points; 30 (the usual default) for larger sets.
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    else:
        if not umap_available():
            raise InvalidArgument(
                "The 'umap' method needs the optional package umap-learn "
                "(pip install 'neural-atelier[maps]'); use 'pca' or 'tsne' without it."
            )
        import umap

        neighbours = min(15, n - 1)
        xy = umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(x)
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return ((xy - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32)
