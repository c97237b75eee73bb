"""Faithfulness (deletion curves) and sanity (model randomisation) checks on the real backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone
from service.core.saliency.faithfulness import CurveOptions, area, curves, evaluate_faithfulness, random_map
from service.core.saliency.sanity import randomised_copy, spearman
from service.core.tensors import images_to_batch


def test_gradcam_deletes_faster_than_a_smoothed_random_map(
    lite0: Backbone, coffee: np.ndarray, chelsea: np.ndarray
) -> None:
    rows = evaluate_faithfulness(
        lite0, [coffee, chelsea], ["gradcam"], size=128, options=CurveOptions(steps=8)
    )
    by = {r.method: r for r in rows}
    assert set(by) == {"gradcam", "random", "centre"}
    assert by["gradcam"].ratio < by["random"].ratio
    assert by["gradcam"].ratio < 0.8  # a clear margin, not a tie with chance
    for r in rows:
        assert 0.0 <= r.morf <= 1.0 and 0.0 <= r.lerf <= 1.0


def test_curves_start_at_the_image_and_end_at_the_blurred_copy(lite0: Backbone, coffee: np.ndarray) -> None:
    x = images_to_batch([np.ascontiguousarray(coffee[::6, ::6])])  # 67 x 100
    target = lite0(x).argmax(dim=1)
    sal = random_map(x.shape[2], x.shape[3], seed=3).unsqueeze(0)
    opts = CurveOptions(steps=5)
    morf, lerf, ins = (curves(lite0, x, sal, target, o, opts) for o in ("morf", "lerf", "insertion"))
    assert morf.shape == (1, 6)
    p0 = torch.softmax(lite0(x), dim=1)[0, target[0]]
    assert torch.allclose(morf[:, 0], p0, atol=1e-5) and torch.allclose(lerf[:, 0], p0, atol=1e-5)
    assert torch.allclose(morf[:, -1], lerf[:, -1], atol=1e-5)  # everything replaced either way
    # Inserting into the blurred copy retraces the LeRF curve backwards (same images, same order).
    assert torch.allclose(ins, lerf.flip(1), atol=1e-5)
    assert torch.allclose(area(torch.tensor([[1.0, 0.5, 0.0]])), torch.tensor([0.5]))


@pytest.mark.parametrize("method", ["gradient", "gradcam"])
def test_maps_change_when_the_top_layers_are_randomised(
    lite0: Backbone, chelsea: np.ndarray, method: str
) -> None:
    from service.core.saliency import saliency_maps

    before = [p.clone() for p in lite0.parameters()]
    x = images_to_batch([np.ascontiguousarray(chelsea[::3, ::3])])  # 100 x 151
    target = lite0(x).argmax(dim=1)
    trained = saliency_maps(lite0, x, method, target)[0].numpy()
    random_net = randomised_copy(lite0, 17, seed=0)
    randomised = saliency_maps(random_net, x, method, target)[0].numpy()
    assert spearman(trained, randomised) < 0.5
    # The shared backbone is untouched: only its deep copy was re-initialised.
    assert all(torch.equal(a, b) for a, b in zip(before, lite0.parameters(), strict=True))
    assert spearman(trained, trained) == pytest.approx(1.0)


def test_spearman_handles_ties_like_scipy() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy (a scikit-image dependency) gives the reference")
    rng = np.random.default_rng(0)
    a = rng.random(300)
    a[:80] = 0.0  # ties, as in a Grad-CAM map after its ReLU
    b = np.round(rng.random(300), 1)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert spearman(np.ones(5), np.arange(5.0)) == 0.0
