"""Saliency methods: shapes and ranges at odd sizes, batching, targets, typed errors, hook hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone
from service.core.backbones.vgg import VGG
from service.core.errors import Cancelled, InvalidArgument
from service.core.progress import CancelToken, Progress
from service.core.saliency import METHODS, explain
from service.core.saliency.hooks import hook_counts

# Tiny settings: enough to exercise every code path (several chunks per method) in little time.
TINY: dict[str, dict[str, object]] = {
    "smoothgrad": {"samples": 3, "batch_size": 2},
    "integrated_gradients": {"steps": 3, "batch_size": 2},
    "occlusion": {"window": 24, "stride": 20, "batch_size": 5},
    "rise": {"masks": 12, "cells": 4, "batch_size": 5},
}


def _crop(image: np.ndarray, top: int, left: int, h: int, w: int) -> np.ndarray:
    return np.ascontiguousarray(image[top : top + h, left : left + w])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_unit_range_maps_at_odd_sizes(
    lite0: Backbone, chelsea: np.ndarray, method: str
) -> None:
    images = [_crop(chelsea, 40, 150, 65, 97), _crop(chelsea, 10, 100, 71, 53)]
    res = explain(lite0, images, method, params=TINY.get(method), size=None, top_k=3)
    assert [m.shape for m in res.maps] == [(65, 97), (71, 53)]
    for m in res.maps:
        assert m.dtype == np.float32
        assert np.isfinite(m).all()
        assert m.min() >= 0.0 and m.max() <= 1.0
        assert m.max() > 0.5  # normalised, not an all-zero map
        assert m.std() > 1e-3  # something is ranked above something else
    assert all(len(p) == 3 for p in res.predictions)
    assert res.targets == [p[0].index for p in res.predictions]  # default target: top-1


@pytest.mark.parametrize("method", METHODS)
def test_batched_maps_equal_per_image_maps(lite0: Backbone, chelsea: np.ndarray, method: str) -> None:
    images = [_crop(chelsea, 60, 120, 48, 64), _crop(chelsea, 100, 200, 48, 64)]  # one batch of two
    params = TINY.get(method)
    batched = explain(lite0, images, method, target=281, params=params, size=None)
    for i, image in enumerate(images):
        alone = explain(lite0, [image], method, target=281, params=params, size=None)
        np.testing.assert_allclose(alone.maps[0], batched.maps[i], atol=2e-3)
    assert batched.targets == [281, 281]


def test_mixed_sizes_are_grouped_and_returned_in_order(lite0: Backbone, chelsea: np.ndarray) -> None:
    images = [_crop(chelsea, 60, 120, 48, 64), _crop(chelsea, 0, 0, 40, 56), _crop(chelsea, 100, 200, 48, 64)]
    mixed = explain(lite0, images, "gradient_x_input", size=None, batch_size=8)
    for i, image in enumerate(images):
        alone = explain(lite0, [image], "gradient_x_input", size=None)
        assert mixed.maps[i].shape == image.shape[:2]
        assert mixed.targets[i] == alone.targets[0]
        np.testing.assert_allclose(alone.maps[0], mixed.maps[i], atol=2e-3)


def test_target_by_label_name_and_per_image_list(lite0: Backbone, coffee: np.ndarray) -> None:
    image = _crop(coffee, 50, 150, 64, 64)
    by_name = explain(lite0, [image], "gradcam", target="espresso", size=None)
    by_index = explain(lite0, [image], "gradcam", target=967, size=None)
    assert by_name.targets == [967]
    np.testing.assert_array_equal(by_name.maps[0], by_index.maps[0])
    two = explain(lite0, [image, image], "gradcam", target=[967, "tabby"], size=None)
    assert two.targets == [967, 281]
    assert not np.allclose(two.maps[0], two.maps[1])  # a different class gives a different map


def test_working_size_resizes_and_maps_return_at_input_resolution(
    lite0: Backbone, chelsea: np.ndarray
) -> None:
    res = explain(lite0, [chelsea], "gradcam", size=64)
    assert res.maps[0].shape == chelsea.shape[:2]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"method": "sharpie"}, "Unknown saliency method"),
        ({"method": "rise", "params": {"masks": 0}}, "masks"),
        ({"method": "rise", "params": {"maskz": 3}}, "Unknown parameter"),
        ({"method": "smoothgrad", "params": {"samples": "many"}}, "must be a int"),
        ({"method": "integrated_gradients", "params": {"baseline": "white"}}, "baseline"),
        ({"method": "gradcam", "params": {"tap": "nope"}}, "Unknown tap"),
        ({"method": "gradcam", "params": {"tap": "logits"}}, "spatial"),
        ({"method": "gradient", "target": 1000}, "out of range"),
        ({"method": "gradient", "target": "not a class at all"}, "Unknown class"),
        ({"method": "gradient", "target": [1, 2, 3]}, "targets for"),
        ({"method": "gradient", "top_k": 0}, "top_k"),
    ],
)
def test_bad_input_raises_typed_errors(lite0: Backbone, kwargs: dict[str, object], needle: str) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InvalidArgument, match=needle):
        explain(lite0, [image], size=None, **kwargs)  # type: ignore[arg-type]
    assert all(v == 0 for v in hook_counts(lite0).values())


def test_bad_images_raise_typed_errors(lite0: Backbone) -> None:
    with pytest.raises(InvalidArgument, match="at least one"):
        explain(lite0, [], "gradient")
    with pytest.raises(InvalidArgument, match="uint8"):
        explain(lite0, [np.zeros((32, 32), np.uint8)], "gradient")
    with pytest.raises(InvalidArgument, match="8x8"):
        explain(lite0, [np.zeros((4, 32, 3), np.uint8)], "gradient")


# Every method with a loop or a hook: the cancel lands inside the loop / inside the hook's context.
@pytest.mark.parametrize(
    "method",
    [
        "guided_backprop",
        "guided_gradcam",
        "gradcam_pp",
        "smoothgrad",
        "integrated_gradients",
        "occlusion",
        "rise",
    ],
)
def test_hooks_are_removed_after_a_cancel_mid_run(lite0: Backbone, chelsea: np.ndarray, method: str) -> None:
    token = CancelToken()
    seen: list[int] = []

    def cancel_on_first(p: Progress) -> None:
        seen.append(p.step)
        token.cancel("test")

    images = [_crop(chelsea, 60, 120, 40, 40)]
    with pytest.raises(Cancelled):
        explain(
            lite0, images, method, params=TINY.get(method), size=None, cancel=token, progress=cancel_on_first
        )
    assert seen == [1]  # stopped right after the first unit of work
    assert all(v == 0 for v in hook_counts(lite0).values()), hook_counts(lite0)


def test_hooks_are_removed_when_the_backward_pass_raises(lite0: Backbone) -> None:
    def boom(p: Progress) -> None:
        raise RuntimeError("progress sink failed")

    image = np.full((40, 40, 3), 128, np.uint8)
    with pytest.raises(RuntimeError, match="sink failed"):
        explain(lite0, [image], "guided_gradcam", size=None, progress=boom)
    assert all(v == 0 for v in hook_counts(lite0).values())
    # The shared backbone still computes plain gradients afterwards (no guided hook left behind).
    plain = explain(lite0, [image], "gradient", size=None)
    guided = explain(lite0, [image], "guided_backprop", size=None)
    assert not np.allclose(plain.maps[0], guided.maps[0])


@pytest.fixture(scope="module")
def random_vgg16() -> Backbone:
    torch.manual_seed(0)
    return VGG("vgg16").eval().requires_grad_(False)


@pytest.mark.parametrize("method", METHODS)
def test_methods_work_on_vgg16(random_vgg16: Backbone, coffee: np.ndarray, method: str) -> None:
    res = explain(random_vgg16, [_crop(coffee, 80, 200, 48, 56)], method, params=TINY.get(method), size=None)
    assert res.maps[0].shape == (48, 56)
    assert res.maps[0].min() >= 0.0 and res.maps[0].max() <= 1.0
    assert all(v == 0 for v in hook_counts(random_vgg16).values())
