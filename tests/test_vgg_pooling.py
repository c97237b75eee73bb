"""VGG with average pooling (Gatys et al. 2016), on random weights: no weights file exists here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from service.core.backbones import load_backbone
from service.core.backbones.vgg import VGG
from service.core.errors import InvalidArgument


@pytest.fixture(scope="module")
def vgg16_pair() -> tuple[VGG, VGG]:
    # Random init of VGG16 takes seconds on a busy CPU: build the pair once.
    torch.manual_seed(0)
    max_pool = VGG("vgg16").eval()
    avg_pool = VGG("vgg16", pooling="avg").eval()
    avg_pool.load_state_dict(max_pool.state_dict())  # same random weights; only the pools differ
    return max_pool, avg_pool


def test_vgg_average_pooling_swaps_the_pools_and_changes_features(vgg16_pair: tuple[VGG, VGG]) -> None:
    max_pool, avg_pool = vgg16_pair
    pools = [m for m in avg_pool.layers if isinstance(m, nn.AvgPool2d | nn.MaxPool2d)]
    assert len(pools) == 5 and all(isinstance(m, nn.AvgPool2d) for m in pools)
    assert all(isinstance(avg_pool.tap_module(f"pool{b}"), nn.AvgPool2d) for b in range(1, 6))
    assert isinstance(max_pool.tap_module("pool1"), nn.MaxPool2d)
    assert avg_pool.tap_names == max_pool.tap_names
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = avg_pool.features(x, ["relu1_2", "pool1", "relu3_1"])
        m = max_pool.features(x, ["relu1_2", "pool1", "relu3_1"])
    torch.testing.assert_close(a["relu1_2"], m["relu1_2"])  # before the first pool: identical
    torch.testing.assert_close(a["pool1"], torch.nn.functional.avg_pool2d(m["relu1_2"], 2))
    assert (a["relu3_1"] - m["relu3_1"]).abs().max() > 1e-3


def test_pooling_option_through_the_loader(vgg16_pair: tuple[VGG, VGG], tmp_path: Path) -> None:
    max_pool, avg_pool = vgg16_pair
    state = {
        ("features." + k[7:] if k.startswith("layers.") else k): v for k, v in max_pool.state_dict().items()
    }
    torch.save(state, tmp_path / "vgg16.pth")
    model = load_backbone("vgg16", weights={"vgg16": tmp_path / "vgg16.pth"}, pooling="avg")
    assert isinstance(model.tap_module("pool3"), nn.AvgPool2d)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(model.features(x, ["relu4_1"]), avg_pool.features(x, ["relu4_1"]))
    with pytest.raises(InvalidArgument, match="VGG backbones only"):
        load_backbone("efficientnet_lite0", pooling="avg")
    with pytest.raises(InvalidArgument, match="pooling"):
        VGG("vgg16", pooling="median")
