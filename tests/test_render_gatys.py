"""Gatys style transfer: the loss falls, seeds reproduce, cancel is prompt and frees memory, bad input is
refused with typed errors."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import Cancelled, ImageTooLarge, InvalidArgument
from service.core.progress import CancelToken, Progress
from service.core.render.gatys import GatysOptions, gatys, gatys_loss, preserve_colors


def small(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * s)), max(1, round(h * s)))))


@pytest.fixture(scope="module")
def content(chelsea: np.ndarray) -> np.ndarray:
    return small(chelsea, 48)


@pytest.fixture(scope="module")
def style(coffee: np.ndarray) -> np.ndarray:
    return small(coffee, 48)


class Recorder:
    def __init__(self, cancel_at: int | None = None, token: CancelToken | None = None) -> None:
        self.reports: list[Progress] = []
        self.cancel_at = cancel_at
        self.token = token

    def __call__(self, p: Progress) -> None:
        self.reports.append(p)
        if self.cancel_at is not None and p.step == self.cancel_at and self.token is not None:
            self.token.cancel("test")


@pytest.fixture
def counted(lite0: Backbone, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[weakref.ref[torch.Tensor]]]:
    """Patch the features of the net Gatys runs (``lite0.for_loss()``, its frozen copy with the batch norms
    folded) to record a weak reference to every input it sees."""
    seen: list[weakref.ref[torch.Tensor]] = []
    runs = lite0.for_loss()
    original = runs.features

    def features(x: torch.Tensor, taps: list[str]) -> dict[str, torch.Tensor]:
        seen.append(weakref.ref(x))
        return original(x, taps)

    monkeypatch.setattr(runs, "features", features)
    yield seen


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_falls(lite0: Backbone, content: np.ndarray, style: np.ndarray, optimizer: str) -> None:
    rec = Recorder()
    o = GatysOptions(
        size=40, steps=6, optimizer=optimizer, learning_rate=0.05 if optimizer == "adam" else None
    )
    out = gatys(lite0, content, [style], o, progress=rec)
    totals = [r.losses["total"] for r in rec.reports]
    assert len(totals) == 6 and [r.step for r in rec.reports] == list(range(1, 7))
    assert totals[-1] < 0.7 * totals[0], totals
    assert out.shape == (27, 40, 3) and out.dtype == np.uint8
    # The returned image really is better than the start under the same objective.
    assert gatys_loss(lite0, out, content, [style], o)["total"] < totals[0]


def test_multiscale_schedule(lite0: Backbone, content: np.ndarray, style: np.ndarray) -> None:
    rec = Recorder()
    o = GatysOptions(scales=(24, 48), scale_steps=(3, 2), init="noise")
    out = gatys(lite0, content, [style], o, progress=rec)
    assert out.shape[:2] == (32, 48)  # chelsea (300x451) at 48 px
    assert [r.total for r in rec.reports] == [5] * 5
    assert [r.stage for r in rec.reports] == ["scale 1/2 (24 px)"] * 3 + ["scale 2/2 (48 px)"] * 2


def test_same_seed_same_image(lite0: Backbone, content: np.ndarray, style: np.ndarray) -> None:
    o = GatysOptions(size=24, steps=3, init="noise", seed=7)
    a = gatys(lite0, content, [style], o)
    b = gatys(lite0, content, [style], o)
    c = gatys(lite0, content, [style], GatysOptions(size=24, steps=3, init="noise", seed=8))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


def test_blend_weight_zero_ignores_a_style(lite0: Backbone, content: np.ndarray, style: np.ndarray) -> None:
    o = GatysOptions(size=24, steps=2)
    single = gatys(lite0, content, [style], o)
    other = np.full_like(style, 200)
    blended = gatys(lite0, content, [style, other], GatysOptions(size=24, steps=2, style_blend=(1.0, 0.0)))
    np.testing.assert_array_equal(single, blended)


def test_cancel_stops_within_one_iteration_and_frees_memory(
    lite0: Backbone, content: np.ndarray, style: np.ndarray, counted: list[weakref.ref[torch.Tensor]]
) -> None:
    token = CancelToken()
    rec = Recorder(cancel_at=3, token=token)
    with pytest.raises(Cancelled) as info:
        gatys(lite0, content, [style], GatysOptions(size=48, steps=50), progress=rec, cancel=token)
    assert [r.step for r in rec.reports] == [1, 2, 3]
    calls_by_step3 = 2 + 3  # targets: one content pass, one style pass; then one pass per iteration
    assert len(counted) <= calls_by_step3 + 1
    gc.collect()
    # The exception (kept alive here by ``info``) must not pin the image being optimised.
    assert counted and all(ref() is None for ref in counted), "a tensor outlived the cancelled run"
    assert info.value.reason == "cancelled"


def test_no_hooks_left_after_a_failed_run(lite0: Backbone, content: np.ndarray, style: np.ndarray) -> None:
    def explode(p: Progress) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError):
        gatys(lite0, content, [style], GatysOptions(size=32, steps=5), progress=explode)
    for module in [*lite0.modules(), *lite0.for_loss().modules()]:  # the net given, and the one run
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks


def test_limits_and_bad_options(lite0: Backbone, content: np.ndarray, style: np.ndarray) -> None:
    with pytest.raises(ImageTooLarge, match="longest side allowed is 256"):
        gatys(lite0, content, [style], GatysOptions(size=512, max_side=256))
    with pytest.raises(ImageTooLarge, match="megapixels"):
        gatys(lite0, content, [style], GatysOptions(size=32, max_pixels=1000))
    bad = [
        GatysOptions(scales=(64, 32)),
        GatysOptions(size=32, style_blend=(1.0, 2.0)),
        GatysOptions(size=32, optimizer="sgd"),
        GatysOptions(size=32, init="zeros"),
        GatysOptions(size=8),
        GatysOptions(size=32, style_weight=-1.0),
        GatysOptions(size=32, scales=(16, 32), scale_steps=(3,)),
        GatysOptions(size=32, style_taps=("nope",)),
    ]
    for o in bad:
        with pytest.raises(InvalidArgument):
            gatys(lite0, content, [style], o)
    with pytest.raises(InvalidArgument, match="at least one style"):
        gatys(lite0, content, [], GatysOptions(size=32))
    with pytest.raises(InvalidArgument, match="uint8"):
        gatys(lite0, content.astype(np.float32), [style], GatysOptions(size=32))


def test_preserve_colors_keeps_content_chroma(content: np.ndarray) -> None:
    grey = np.repeat(
        np.linspace(0, 255, content.shape[1], dtype=np.uint8)[None, :, None], content.shape[0], 0
    )
    stylized = np.repeat(grey, 3, axis=2)
    out = preserve_colors(stylized, content)
    out_ycc = np.asarray(Image.fromarray(out).convert("YCbCr")).astype(int)
    content_ycc = np.asarray(Image.fromarray(content).convert("YCbCr")).astype(int)
    stylized_y = np.asarray(Image.fromarray(stylized).convert("L")).astype(int)
    # Chroma from the content, luminance from the stylised image (up to RGB rounding and gamut clipping).
    assert np.median(np.abs(out_ycc[:, :, 1:] - content_ycc[:, :, 1:])) <= 2
    assert np.median(np.abs(out_ycc[:, :, 0] - stylized_y)) <= 2


def test_vgg_preset_loss_falls(content: np.ndarray, style: np.ndarray) -> None:
    """The neural-style loss path (VGG taps, unnormalised terms) with a seeded random VGG19 (no weights)."""
    from service.core.backbones.vgg import VGG

    torch.manual_seed(0)
    vgg = VGG("vgg19").eval().requires_grad_(False)
    vgg.classifier = torch.nn.Sequential()  # the 100M-parameter head is never used by these taps
    rec = Recorder()
    gatys(vgg, content, [style], GatysOptions(size=32, steps=3), progress=rec)
    totals = [r.losses["total"] for r in rec.reports]
    assert totals[-1] < totals[0]
