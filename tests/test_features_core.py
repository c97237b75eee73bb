"""Embeddings, nearest-neighbour indexes, galleries, projections, sheets and feature maps (core library)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, ResourceExhausted
from service.core.features.embed import embed, embedding_tap
from service.core.features.feature_map import draw_feature_map
from service.core.features.gallery import Gallery
from service.core.features.index import build_index
from service.core.features.projection import project_2d
from service.core.features.sheet import neighbour_sheet


def _photos() -> list[np.ndarray]:
    from skimage import data

    return [np.ascontiguousarray(f()) for f in (data.chelsea, data.coffee, data.astronaut)]


def test_embedding_shape_tap_and_normalisation(lite0: Backbone) -> None:
    photos = _photos()[:2]
    raw = embed(lite0, photos)
    unit = embed(lite0, photos, normalize=True)
    assert embedding_tap(lite0) == "pool" and raw.tap == "pool"
    assert raw.vectors.shape == (2, 1280) and raw.vectors.dtype == np.float32
    assert (raw.vectors >= 0).all()  # average of ReLU6 outputs
    np.testing.assert_allclose(np.linalg.norm(unit.vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        unit.vectors, raw.vectors / np.linalg.norm(raw.vectors, axis=1)[:, None], rtol=1e-5
    )


def test_embedding_is_deterministic_and_batch_invariant(lite0: Backbone) -> None:
    photos = _photos()
    together = embed(lite0, photos, batch_size=3).vectors
    again = embed(lite0, photos, batch_size=3).vectors
    alone = np.concatenate([embed(lite0, [p]).vectors for p in photos])
    reordered = embed(lite0, photos[::-1], batch_size=2).vectors[::-1]
    np.testing.assert_array_equal(together, again)
    np.testing.assert_allclose(alone, together, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(reordered, together, atol=1e-5, rtol=1e-4)
    # different photos really do give different vectors
    assert np.abs(together[0] - together[1]).max() > 0.1


def test_embedding_matches_the_classifier_head(lite0: Backbone, chelsea: np.ndarray) -> None:
    e = embed(lite0, [chelsea], top=1)
    assert e.predictions is not None and "cat" in e.predictions[0][0].label
    logits = lite0._fc(torch.from_numpy(e.vectors))  # the head reads exactly this vector
    assert int(logits.argmax()) == e.predictions[0][0].index


def test_embed_refuses_bad_input(lite0: Backbone) -> None:
    with pytest.raises(InvalidArgument):
        embed(lite0, [])
    with pytest.raises(InvalidArgument):
        embed(lite0, [np.zeros((8, 8), np.uint8)])
    with pytest.raises(InvalidArgument):
        embed(lite0, [np.zeros((8, 8, 3), np.float32)])


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_index_finds_each_vector_first(method: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 32)).astype(np.float32)
    ids, dist = build_index(vectors, method).search(vectors[:50], 5)
    assert (ids[:, 0] == np.arange(50)).all()
    assert np.allclose(dist[:, 0], 0.0, atol=1e-5)
    assert (np.diff(dist, axis=1) >= -1e-6).all()  # nearest first


def test_exact_index_agrees_with_brute_cosine() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    queries = rng.normal(size=(10, 16)).astype(np.float32)
    ids, dist = build_index(vectors, "exact").search(queries, 3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    expected = np.argsort(1 - q @ unit.T, axis=1)[:, :3]
    assert (ids == expected).all()
    np.testing.assert_allclose(dist, np.take_along_axis(1 - q @ unit.T, expected, axis=1), atol=1e-5)
    from sklearn.neighbors import NearestNeighbors  # an independent implementation

    sk_dist, sk_ids = NearestNeighbors(metric="cosine", algorithm="brute").fit(vectors).kneighbors(queries, 3)
    assert (ids == sk_ids).all()
    np.testing.assert_allclose(dist, sk_dist, atol=1e-5)


def test_index_refuses_bad_vectors() -> None:
    with pytest.raises(InvalidArgument, match="finite"):
        build_index(np.array([[np.nan, 1.0]], np.float32))
    with pytest.raises(InvalidArgument, match="Unknown index method"):
        build_index(np.ones((2, 2), np.float32), "annoy")
    index = build_index(np.eye(3, dtype=np.float32))
    with pytest.raises(InvalidArgument, match="dimension"):
        index.search(np.ones((1, 4), np.float32), 1)
    with pytest.raises(InvalidArgument, match="k must be"):
        index.search(np.ones((1, 3), np.float32), 0)


def test_gallery_image_returns_itself_first(lite0: Backbone) -> None:
    photos = _photos()
    gallery = Gallery(1280, max_items=10)
    vectors = embed(lite0, photos).vectors
    gallery.add(["chelsea", "coffee", "astronaut"], vectors)
    hits = gallery.search(embed(lite0, [photos[2]]).vectors, k=2)[0]
    assert hits[0].name == "astronaut" and hits[0].distance < 1e-4
    assert len(hits) == 2 and hits[1].distance > 0.05
    # k larger than the gallery is capped, not an error
    many = gallery.search(vectors[:1], k=50)[0]
    assert len(many) == 3 and many[0].name == "chelsea"


def test_gallery_is_bounded() -> None:
    gallery = Gallery(4, max_items=3)
    gallery.add(["a", "b"], np.ones((2, 4), np.float32))
    with pytest.raises(ResourceExhausted, match="at most 3"):
        gallery.add(["c", "d"], np.ones((2, 4), np.float32))
    assert len(gallery) == 2  # nothing of a refused add is kept
    with pytest.raises(InvalidArgument, match="empty"):
        Gallery(4, max_items=3).search(np.ones((1, 4), np.float32), 1)
    with pytest.raises(InvalidArgument, match="names"):
        gallery.add(["x"], np.ones((2, 4), np.float32))


# umap is left out here: numba compiles it on first use (~40 s on CI's CPU); its refusal is tested below.
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_is_seeded_and_scaled(method: str) -> None:
    rng = np.random.default_rng(2)
    vectors = np.concatenate([rng.normal(0, 1, (10, 8)) + 5 * np.eye(8)[i % 2] for i in range(2)])
    xy = project_2d(vectors.astype(np.float32), method, seed=3)
    assert xy.shape == (20, 2) and xy.min() >= 0 and xy.max() <= 1
    np.testing.assert_allclose(project_2d(vectors.astype(np.float32), method, seed=3), xy, atol=1e-5)


def test_projection_refuses_too_few_points_and_unknown_methods() -> None:
    with pytest.raises(InvalidArgument, match="at least 3"):
        project_2d(np.ones((2, 4), np.float32))
    with pytest.raises(InvalidArgument, match="Unknown map method"):
        project_2d(np.ones((5, 4), np.float32), "isomap")


def test_umap_without_the_package_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.core.features.projection as projection

    monkeypatch.setattr(projection, "umap_available", lambda: False)
    with pytest.raises(InvalidArgument, match="umap-learn"):
        projection.project_2d(np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32), "umap")


def test_sheet_and_map_draw_images() -> None:
    photos = [*_photos(), _photos()[0][::2, ::2].copy()]
    sheet = neighbour_sheet(photos[0], [(p, f"n{i}", 0.1 * i) for i, p in enumerate(photos)], tile=64)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[1] > 5 * 64 and sheet.std() > 10
    coords = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], np.float32)
    canvas = draw_feature_map(photos, coords, ["cat", "cup", "cat", "rocket"], size=400, thumb=48)
    assert canvas.shape[0] == 400 and canvas.std() > 10
