"""The anti-aliased loss network (Zhang 2019): same taps and shapes as Lite0, nearly the same features on a
smooth photo, and features of a period-2 pattern that no longer depend on its phase."""

from __future__ import annotations

import pytest
import torch

from service.core.backbones import get_backbone
from service.core.backbones.antialias import BlurSubsample, antialiased
from service.core.errors import InvalidArgument
from service.core.stylize.losses import gram_matrix
from service.core.stylize.train import TrainConfig, recipe_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TAPS = ("stem", "block1.expand", "block3.expand", "block5.expand", "block8.expand", "block7")


@pytest.fixture(scope="module")
def nets() -> tuple[torch.nn.Module, torch.nn.Module]:
    plain = get_backbone("efficientnet_lite0").for_loss()
    return plain, antialiased(get_backbone("efficientnet_lite0"))


def smooth_photo(h: int, w: int) -> torch.Tensor:
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None, :]
    img = torch.stack([0.5 + 0.4 * torch.sin(3 * x + 2 * y), 0.3 + 0.5 * x * y, 0.6 - 0.3 * y + 0 * x])
    return img[None].clamp(0, 1)


@pytest.mark.parametrize("size", [(64, 64), (67, 93), (33, 50)])
def test_taps_keep_their_shapes(nets, size) -> None:
    plain, aa = nets
    x = smooth_photo(*size)
    a = plain.features(x, TAPS)
    b = aa.features(x, TAPS)
    assert {t: v.shape for t, v in a.items()} == {t: v.shape for t, v in b.items()}


def test_smooth_photo_features_stay_lite0s(nets) -> None:
    """The weights are Lite0's: on a photo with no fine detail the copy's features correlate with the
    plain net's at every tap (a different network's would not)."""
    plain, aa = nets
    x = smooth_photo(128, 128)
    a, b = plain.features(x, TAPS), aa.features(x, TAPS)
    for tap in TAPS:
        corr = torch.corrcoef(torch.stack([a[tap].flatten(), b[tap].flatten()]))[0, 1]
        assert corr > 0.8, (tap, float(corr))


def test_period_two_pattern_is_seen_the_same_at_every_phase(nets) -> None:
    """A period-2 crosshatch over a photo, shifted by one pixel: the plain net's stride-2 stem samples it
    at another phase and its deep Grams move; the anti-aliased copy's move ten times less."""
    plain, aa = nets
    base = smooth_photo(128, 128)
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    hatch = 0.12 * (((yy + xx) % 2) * 2 - 1).float()
    x0 = (base + hatch).clamp(0, 1)
    x1 = (base + hatch.roll(1, dims=1)).clamp(0, 1)

    def gram_shift(net: torch.nn.Module) -> float:
        f0, f1 = net.features(x0, TAPS[1:5]), net.features(x1, TAPS[1:5])
        moves = [
            (gram_matrix(f0[t]) - gram_matrix(f1[t])).norm() / gram_matrix(f0[t]).norm() for t in TAPS[1:5]
        ]
        return float(torch.stack(moves).mean())

    assert gram_shift(aa) * 10 < gram_shift(plain)


def test_the_plain_backbone_is_untouched(nets) -> None:
    plain, _ = nets
    assert plain._conv_stem.stride == (2, 2)
    assert isinstance(plain.stem_act, torch.nn.ReLU6)


def test_blur_subsample_keeps_a_constant_and_halves_the_size() -> None:
    blur = BlurSubsample(2)
    out = blur(torch.full((1, 2, 7, 10), 0.25))
    assert out.shape == (1, 2, 4, 5)
    assert torch.allclose(out, torch.full_like(out, 0.25))


def test_config_flag_builds_the_antialiased_loss() -> None:
    backbone = get_backbone("efficientnet_lite0")
    loss = recipe_loss(TrainConfig(antialias="all", identity=True), backbone, None, torch.device("cpu"))
    assert loss.backbone is antialiased(backbone)
    assert loss.backbone._conv_stem.stride == (1, 1)
    deep = recipe_loss(TrainConfig(antialias="deep", identity=True), backbone, None, torch.device("cpu"))
    assert deep.backbone._conv_stem.stride == (2, 2)
    assert deep.backbone._blocks[1]._depthwise_conv.stride == (1, 1)
    with pytest.raises(InvalidArgument, match="antialias"):
        TrainConfig(antialias="some").validate()
