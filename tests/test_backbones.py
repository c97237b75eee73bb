"""The embedded EfficientNet-Lite0 classifies real photos; taps have the documented shapes; VGG loads locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone, load_backbone
from service.core.backbones.vgg import VGG, load_vgg
from service.core.classify import classify
from service.core.errors import InvalidArgument, UnknownModel, WeightsNotFound
from service.core.labels import resolve_class

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_chelsea_is_a_cat(lite0: Backbone, chelsea: np.ndarray) -> None:
    top = classify(lite0, [chelsea], k=5)[0]
    assert top[0].label in CAT_CLASSES
    assert sum(p.probability for p in top) <= 1.0 + 1e-6


def test_coffee_is_espresso(lite0: Backbone, coffee: np.ndarray) -> None:
    assert classify(lite0, [coffee], k=1)[0][0].label == "espresso"


def test_batch_matches_single(lite0: Backbone, chelsea: np.ndarray, coffee: np.ndarray) -> None:
    both = classify(lite0, [chelsea, coffee], k=3)
    assert [p.index for p in both[0]] == [p.index for p in classify(lite0, [chelsea], k=3)[0]]
    assert [p.index for p in both[1]] == [p.index for p in classify(lite0, [coffee], k=3)[0]]


# (tap, channels, stride) for EfficientNet-Lite0
EXPECTED_TAPS = [
    ("stem", 32, 2),
    ("block0", 16, 2),
    ("block1.expand", 96, 2),
    ("block1", 24, 4),
    ("block3.expand", 144, 4),
    ("block3", 40, 8),
    ("block5.expand", 240, 8),
    ("block7", 80, 16),
    ("block8.expand", 480, 16),
    ("block11", 192, 32),
    ("block15", 320, 32),
    ("head", 1280, 32),
]


@pytest.mark.parametrize("size", [(224, 224), (225, 301)])
def test_tap_shapes_and_strides(lite0: Backbone, size: tuple[int, int]) -> None:
    h, w = size
    feats = lite0.features(torch.rand(2, 3, h, w), [t for t, _, _ in EXPECTED_TAPS] + ["pool", "logits"])
    for tap, ch, stride in EXPECTED_TAPS:
        # TF "SAME" padding: every stride-2 stage gives ceil(n / 2).
        eh, ew = h, w
        s = 1
        while s < stride:
            eh, ew, s = -(-eh // 2), -(-ew // 2), s * 2
        assert tuple(feats[tap].shape) == (2, ch, eh, ew), tap
    assert tuple(feats["pool"].shape) == (2, 1280)
    assert tuple(feats["logits"].shape) == (2, 1000)


def test_taps_in_order_and_modules(lite0: Backbone) -> None:
    names = lite0.tap_names
    assert names[0] == "stem" and names[-1] == "logits"
    assert names.index("block1.expand") < names.index("block1") < names.index("block2.expand")
    for style_tap in lite0.default_style_taps:
        assert style_tap in names
    with pytest.raises(InvalidArgument, match="Unknown tap"):
        lite0.tap_module("nope")


def test_hook_on_tap_module_sees_the_tap(lite0: Backbone) -> None:
    seen: dict[str, torch.Tensor] = {}
    handle = lite0.tap_module("block3.expand").register_forward_hook(
        lambda _m, _i, out: seen.setdefault("x", out.detach())
    )
    try:
        x = torch.rand(1, 3, 64, 64)
        direct = lite0.features(x, ["block3.expand"])["block3.expand"]
    finally:
        handle.remove()
    assert torch.equal(seen["x"], direct)


def test_features_stop_early(lite0: Backbone) -> None:
    """Asking for the stem must not run the head (checked with a hook on the head)."""
    ran: list[bool] = []
    handle = lite0.tap_module("head").register_forward_hook(lambda *_: ran.append(True))
    try:
        lite0.features(torch.rand(1, 3, 64, 64), ["stem"])
    finally:
        handle.remove()
    assert not ran


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_loads_from_local_file(arch: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = VGG(arch)
    state = {
        ("features." + k[len("layers.") :] if k.startswith("layers.") else k): v
        for k, v in ref.state_dict().items()
    }
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    model = load_backbone(arch, weights={arch: path})
    assert model.name == arch
    x = torch.rand(1, 3, 64, 80)
    feats = model.features(x, ["relu1_1", "relu4_2", "pool5", "logits"])
    assert tuple(feats["relu1_1"].shape) == (1, 64, 64, 80)
    assert tuple(feats["relu4_2"].shape) == (1, 512, 8, 10)
    assert tuple(feats["logits"].shape) == (1, 1000)
    ref.eval()
    assert torch.allclose(model(x), ref(x), atol=1e-5)


def test_vgg_missing_file_says_where(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFound) as info:
        load_vgg("vgg19", tmp_path / "nothing.pth")
    msg = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in msg and str(tmp_path) in msg and "ATELIER_VGG19_WEIGHTS" in msg


def test_vgg_wrong_file_is_a_load_error(tmp_path: Path) -> None:
    from service.core.errors import ModelLoadError

    bad = tmp_path / "vgg16.pth"
    torch.save({"not": torch.zeros(1)}, bad)
    with pytest.raises(ModelLoadError):
        load_vgg("vgg16", bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError):
        load_vgg("vgg16", bad)


def test_unknown_backbone_lists_names() -> None:
    with pytest.raises(UnknownModel, match="efficientnet_lite0, vgg16, vgg19"):
        load_backbone("resnet50")


def test_resolve_class() -> None:
    assert resolve_class("espresso") == 967
    assert resolve_class(281) == 281
    assert resolve_class("281") == 281
    with pytest.raises(InvalidArgument):
        resolve_class(1000)
    with pytest.raises(InvalidArgument):
        resolve_class("no such class")


def test_shipped_labels_match_torchvision() -> None:
    from torchvision.models import ResNet18_Weights

    from service.core.labels import imagenet_labels

    assert imagenet_labels() == list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def test_the_loss_copy_folds_the_norms_and_gives_the_same_features(lite0: Backbone) -> None:
    """``for_loss`` (the perceptual losses' copy): no batch norm left, the features and their gradient
    with respect to the image those of the real net, at odd sizes; made once and left alone after."""
    folded = lite0.for_loss()
    assert folded is not lite0 and folded is lite0.for_loss() and folded.for_loss() is folded
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.modules())  # the original is untouched
    taps = ["stem", "block1.expand", "block3.expand", "block5.expand", "block7", "block8.expand", "logits"]
    x = torch.rand(2, 3, 67, 93, requires_grad=True)
    ours, theirs = folded.features(x, taps), lite0.features(x, taps)
    for tap in taps:
        a, b = ours[tap].detach(), theirs[tap].detach()
        assert float((a - b).abs().max()) <= 1e-4 * float(b.abs().max()), tap
    (g_ours,) = torch.autograd.grad(ours["block8.expand"].square().sum(), x)
    (g_theirs,) = torch.autograd.grad(theirs["block8.expand"].square().sum(), x)
    assert float((g_ours - g_theirs).abs().max()) <= 1e-3 * float(g_theirs.abs().max())
