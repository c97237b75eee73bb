"""Training levers against the crosshatch and the lost photo: the same-offset jitter, SWAG smoothing, the
identity warm start (--identity / --init) and the CPU budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.render.losses import softmax3d
from service.core.stylize.losses import LossWeights, PerceptualLoss, shift_both
from service.core.stylize.nets import build_net
from service.core.stylize.train import TrainConfig, jitter_offset, load_checkpoint, net_from_checkpoint, train
from tests.paintings import stripes

TINY = {"batch": 2, "size": 32, "style_size": 64, "checkpoint_every": 0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _blobs(seed: int, h: int = 64, w: int = 64) -> torch.Tensor:
    """(1, 3, h, w) in 0..255: smooth random colour fields, a photo's low frequencies without a download."""
    coarse = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return up.clamp(0, 1) * 255


@pytest.fixture(scope="module")
def blob_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("blobs")
    for i in range(6):
        Image.fromarray(_blobs(i)[0].permute(1, 2, 0).round().byte().numpy()).save(folder / f"b{i}.png")
    return folder


@pytest.fixture(scope="module")
def style_t() -> torch.Tensor:
    return torch.from_numpy(stripes()).permute(2, 0, 1)[None].float() / 255


def test_jitter_rolls_output_and_content_by_the_same_offset(lite0: Backbone, style_t: torch.Tensor) -> None:
    loss = PerceptualLoss(lite0, style_t, LossWeights())
    content = _blobs(3) / 255
    stylized = content.clone()  # an identity "net"
    offsets = {jitter_offset(0, step, 32) for step in range(40)}
    assert all(0 <= dy < 32 and 0 <= dx < 32 for dy, dx in offsets) and len(offsets) > 30
    assert jitter_offset(0, 7, 32) == jitter_offset(0, 7, 32)  # from (seed, step): a resume rolls the same
    for dy, dx in list(offsets)[:3]:
        a, b = shift_both(stylized, content, dy, dx)
        assert not torch.equal(a, stylized)  # it did move
        assert float(loss(a, b)["content"]) == 0.0
    # Different offsets for the two would be visible to the content term: the test can fail.
    moved, _ = shift_both(stylized, content, 5, 9)
    assert float(loss(moved, content)["content"]) > 0.01


def test_softmax3d_is_a_distribution_over_channels_and_pixels() -> None:
    f = torch.randn(2, 4, 5, 6) * 3
    s = softmax3d(f)
    assert s.shape == f.shape
    assert torch.allclose(s.sum(dim=(1, 2, 3)), torch.ones(2))
    order = torch.argsort(f[0].flatten())
    assert torch.all(s[0].flatten()[order].diff() >= 0)  # monotone: it smooths, it does not reorder
    assert float(s.max()) < float(torch.softmax(f.flatten(1) * 4, 1).max())  # lower T: sharper


def test_swag_smooths_only_the_deep_taps(lite0: Backbone, style_t: torch.Tensor) -> None:
    plain = PerceptualLoss(lite0, style_t, LossWeights())
    swag = PerceptualLoss(lite0, style_t, LossWeights(), swag=True)
    assert plain.swag_taps == frozenset()  # opt-in
    assert swag.swag_taps == {"block5.expand", "block8.expand", "block7"}  # stride >= 8 of Lite0's taps
    # Shallow Gram targets are the same; deep ones are those of the softmax-smoothed maps.
    assert torch.equal(plain.gram_0, swag.gram_0)
    assert not torch.allclose(plain.gram_3, swag.gram_3)
    content = _blobs(4) / 255
    a, b = plain(content.flip(-1), content), swag(content.flip(-1), content)
    assert float(a["content"]) > 0 and float(b["content"]) > 0
    assert not torch.allclose(a["style"], b["style"])
    assert float(swag(content, content)["content"]) == 0.0


def test_batch_gram_matches_the_mean_of_the_crops_grams(lite0: Backbone, style_t: torch.Tensor) -> None:
    """One Gram of the batch (the crops side by side) is the mean of the crops' Grams, so the batch as a
    whole matches the painting: two crops whose statistics straddle the target cost less than each alone."""
    from service.core.stylize.losses import gram_matrix

    weights = LossWeights(content=0.0, style=1.0, tv=0.0)
    per_crop = PerceptualLoss(lite0, style_t, weights)
    whole = PerceptualLoss(lite0, style_t, weights, batch_gram=True)
    a, b = _blobs(1) / 255, _blobs(2) / 255
    batch = torch.cat([a, b])
    expected = 0.0
    feats = whole.backbone.features(batch, whole.style_taps)
    for i, tap in enumerate(whole.style_taps):
        mean = gram_matrix(feats[tap]).mean(0, keepdim=True)
        expected += float(
            ((mean - getattr(whole, f"gram_{i}")) ** 2).mean() / getattr(whole, f"gram_scale_{i}")
        )
    got = float(whole(batch, batch)["style"])
    assert got == pytest.approx(expected, rel=1e-4)
    # Per crop is the mean of the crops' own distances, which is never below the distance of their mean.
    assert float(per_crop(batch, batch)["style"]) >= got
    single = float(whole(a, a)["style"])
    assert single == pytest.approx(float(per_crop(a, a)["style"]), rel=1e-5)  # one crop: the same term


def test_identity_warm_start_reproduces_a_photo(lite0: Backbone, blob_photos: Path, tmp_path: Path) -> None:
    """A tiny --identity run (100 steps of 32 px crops) reproduces an unseen generated photo: mean abs
    error below 35 (0..255) and every channel correlated above 0.8 with the photo, against 60+ and below
    0 for the fresh net. The error floor is the encoder's instance norm, which discards the global colour."""
    cfg = TrainConfig(arch="mobile2", steps=100, lr=1e-2, seed=0, identity=True, **TINY)  # type: ignore[arg-type]
    result = train(cfg, None, blob_photos, tmp_path, "identity", lite0)
    assert result.history[-1]["style"] == 0.0 and result.history[-1]["pixel"] > 0
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["config"]["identity"] is True and ckpt["style_sha256"] == ""
    photo = _blobs(99, 48, 64)

    def errors(net: torch.nn.Module) -> tuple[float, float]:
        with torch.no_grad():
            y = net(photo).clamp(0, 255)
        a, b = y - y.mean((2, 3), keepdim=True), photo - photo.mean((2, 3), keepdim=True)
        corr = (a * b).sum((0, 2, 3)) / (a.square().sum((0, 2, 3)) * b.square().sum((0, 2, 3))).sqrt()
        return float((y - photo).abs().mean()), float(corr.min())

    torch.manual_seed(0)
    fresh_mae, fresh_corr = errors(build_net("mobile2").eval())
    mae, corr = errors(net_from_checkpoint(ckpt))
    assert mae < 35 and corr > 0.8, (mae, corr)
    assert mae < 0.6 * fresh_mae and corr > fresh_corr + 0.5, (fresh_mae, fresh_corr)


def test_style_run_starts_from_the_warm_start(
    lite0: Backbone, blob_photos: Path, style_t: torch.Tensor, tmp_path: Path
) -> None:
    style = (style_t[0].permute(1, 2, 0) * 255).round().byte().numpy()
    warm = train(
        TrainConfig(arch="mobile2", steps=60, lr=1e-2, identity=True, **TINY),  # type: ignore[arg-type]
        None,
        blob_photos,
        tmp_path / "id",
        "identity",
        lite0,
    )
    cfg = TrainConfig(arch="mobile2", steps=1, shift_jitter=32, swag=True, **TINY)  # type: ignore[arg-type]
    fresh = train(cfg, style, blob_photos, tmp_path / "a", "s", lite0)
    tuned = train(cfg, style, blob_photos, tmp_path / "b", "s", lite0, init_from=warm.checkpoint)
    # The warm start keeps the photo: its first content term is far below a fresh net's.
    assert tuned.history[0]["content"] < 0.7 * fresh.history[0]["content"], (fresh.history, tuned.history)
    with pytest.raises(InvalidArgument, match="is a mobile2 net, not mobile"):
        train(TrainConfig(arch="mobile", steps=1, **TINY), style, blob_photos, tmp_path / "c", "s", lite0,  # type: ignore[arg-type]
              init_from=warm.checkpoint)  # fmt: skip
    with pytest.raises(InvalidArgument, match="needs a style image"):
        train(TrainConfig(steps=1, **TINY), None, blob_photos, tmp_path / "d", "s", lite0)  # type: ignore[arg-type]


def test_cpu_budget_stops_and_counts_across_resume(
    lite0: Backbone, blob_photos: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(steps=10_000, identity=True, cpu_budget_s=1e-9, **TINY)  # type: ignore[arg-type]
    first = train(cfg, None, blob_photos, tmp_path, "budget", lite0)
    assert first.step == 1  # one step always runs, then the budget is spent
    ckpt = load_checkpoint(first.checkpoint)
    assert ckpt["step"] == 1 and ckpt["cpu_seconds"] > 0
    with pytest.raises(InvalidArgument, match="spent its CPU budget"):
        train(cfg, None, blob_photos, tmp_path, "budget", lite0, resume=True)
    more = TrainConfig(steps=3, identity=True, cpu_budget_s=1e6, **TINY)  # type: ignore[arg-type]
    resumed = train(more, None, blob_photos, tmp_path, "budget", lite0, resume=True)
    assert resumed.step == 3
    assert load_checkpoint(resumed.checkpoint)["cpu_seconds"] > ckpt["cpu_seconds"]
    with pytest.raises(InvalidArgument, match="shift-jitter"):
        TrainConfig(shift_jitter=-1).validate()


def test_cli_identity_then_init(blob_photos: Path, tmp_path: Path) -> None:
    from service.cli import main

    runs = tmp_path / "runs"
    common = ["--data", str(blob_photos), "--steps", "2", "--batch", "1", "--size", "32", "--out", str(runs)]
    assert main(["train", "--identity", "--arch", "mobile2", "--name", "identity-mobile2", *common]) == 0
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(tmp_path / "style.png")
    code = main(
        ["train", "--style-image", str(tmp_path / "style.png"), "--name", "s", "--arch", "mobile2",
         "--init", str(runs / "identity-mobile2.ckpt"), "--shift-jitter", "32", "--swag", "--antialias",
         "--style-size", "48", *common]
    )  # fmt: skip
    assert code == 0
    config = load_checkpoint(runs / "s.ckpt")["config"]
    assert config["shift_jitter"] == 32 and config["swag"] is True and config["identity"] is False
    assert config["antialias"] == "all"
    # A style run needs its painting; an identity run must not get one.
    assert main(["train", "--name", "x", *common]) != 0


def test_resume_with_the_levers_continues_to_the_same_result(
    lite0: Backbone, blob_photos: Path, style_t: torch.Tensor, tmp_path: Path
) -> None:
    """The roll offsets come from (seed, step), so a run stopped and resumed (as the background ablation
    does) ends bit-identical to an uninterrupted one, with the jitter and SWAG on."""
    style = (style_t[0].permute(1, 2, 0) * 255).round().byte().numpy()
    levers = {"arch": "mobile2", "shift_jitter": 32, "swag": True, "seed": 4, **TINY}
    whole = train(TrainConfig(steps=4, **levers), style, blob_photos, tmp_path / "w", "r", lite0)  # type: ignore[arg-type]
    train(TrainConfig(steps=2, **levers), style, blob_photos, tmp_path / "p", "r", lite0)  # type: ignore[arg-type]
    resumed = train(
        TrainConfig(steps=4, **levers), style, blob_photos, tmp_path / "p", "r", lite0, resume=True
    )  # type: ignore[arg-type]
    assert resumed.history == whole.history
    a, b = load_checkpoint(whole.checkpoint)["model"], load_checkpoint(resumed.checkpoint)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_grid_weight_adds_its_term_to_the_total(
    lite0: Backbone, blob_photos: Path, style_t: torch.Tensor, tmp_path: Path
) -> None:
    style = (style_t[0].permute(1, 2, 0) * 255).round().byte().numpy()
    tiny = {**TINY, "size": 64}  # periods 2, 4 and 8 need a crop of at least 24 px; 64 px holds all three
    off = train(TrainConfig(arch="mobile2", steps=2, **tiny), style, blob_photos, tmp_path / "a", "s", lite0)  # type: ignore[arg-type]
    on = train(
        TrainConfig(arch="mobile2", steps=2, grid_weight=10.0, **tiny),
        style,
        blob_photos,
        tmp_path / "b",
        "s",
        lite0,
    )  # type: ignore[arg-type]
    assert all(r["grid"] == 0.0 for r in off.history)
    first = on.history[0]
    assert first["grid"] > 0.0
    parts = sum(first[k] for k in ("content", "style", "tv", "range", "pixel", "grid"))
    assert first["total"] == pytest.approx(parts, rel=1e-4)
    # --grid-margin reaches the penalty: the same first output, with a spike allowance above any it has,
    # costs nothing; the same step's style term shows it is the same output.
    wide = TrainConfig(arch="mobile2", steps=1, grid_weight=10.0, grid_margin=4.0, **tiny)  # type: ignore[arg-type]
    lax = train(wide, style, blob_photos, tmp_path / "c", "s", lite0).history[0]
    assert lax["grid"] == 0.0 and lax["style"] == pytest.approx(first["style"], rel=1e-5)
