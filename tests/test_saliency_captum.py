"""Cross-check against Captum (test-only dependency): the raw attributions, before [0, 1] normalisation,
agree with Captum's implementations on the same model, inputs and settings (relative error < 1e-3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from service.core.backbones import Backbone
from service.core.saliency import attribute
from service.core.saliency.blur import heavy_blur
from service.core.tensors import images_to_batch

captum_attr = pytest.importorskip("captum.attr", reason="Captum is a dev extra; the cross-check needs it")


def rel_error(ours: Tensor, theirs: Tensor) -> float:
    ours, theirs = ours.detach(), theirs.detach()
    return float((ours - theirs).norm() / theirs.norm().clamp(min=1e-12))


@pytest.fixture(scope="module")
def batch(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[Tensor, Tensor]:
    images = [np.ascontiguousarray(chelsea[40:136, 140:236]), np.ascontiguousarray(coffee[60:156, 180:276])]
    return images_to_batch(images), torch.tensor([281, 967])


def test_gradient_matches_captum_saliency(lite0: Backbone, batch: tuple[Tensor, Tensor]) -> None:
    x, t = batch
    ours = attribute(lite0, x, "gradient", t)
    theirs = captum_attr.Saliency(lite0).attribute(x, target=t, abs=True).amax(dim=1)
    assert rel_error(ours, theirs) < 1e-3


@pytest.mark.parametrize("baseline", ["black", "blur"])
def test_integrated_gradients_match_captum(
    lite0: Backbone, batch: tuple[Tensor, Tensor], baseline: str
) -> None:
    x, t = batch
    params = {"steps": 6, "baseline": baseline, "batch_size": 4}
    ours = attribute(lite0, x, "integrated_gradients", t, params)
    base = torch.zeros_like(x) if baseline == "black" else heavy_blur(x)
    ig = captum_attr.IntegratedGradients(lite0)
    theirs = ig.attribute(
        x, baselines=base, target=t, n_steps=6, method="riemann_middle", internal_batch_size=4
    ).sum(dim=1)
    assert rel_error(ours, theirs) < 1e-3


@pytest.mark.parametrize("tap", ["head", "block13.dw"])
def test_gradcam_matches_captum_layer_gradcam(
    lite0: Backbone, batch: tuple[Tensor, Tensor], tap: str
) -> None:
    x, t = batch
    ours = attribute(lite0, x, "gradcam", t, {"tap": tap})
    theirs = captum_attr.LayerGradCam(lite0, lite0.tap_module(tap)).attribute(
        x, target=t, relu_attributions=False
    )[:, 0]
    assert ours.shape == theirs.shape
    assert rel_error(ours, theirs) < 1e-3


def test_occlusion_matches_captum(lite0: Backbone, batch: tuple[Tensor, Tensor]) -> None:
    x, t = batch
    params = {"window": 40, "stride": 28, "fill": 0.5, "batch_size": 16}
    ours = attribute(lite0, x, "occlusion", t, params)
    theirs = captum_attr.Occlusion(lite0).attribute(
        x,
        sliding_window_shapes=(3, 40, 40),
        strides=(3, 28, 28),
        baselines=0.5,
        target=t,
        perturbations_per_eval=8,
    )
    assert torch.allclose(theirs[:, 0], theirs[:, 2])  # the window covers all channels
    assert rel_error(ours, theirs[:, 0]) < 1e-3
