"""Training: the loss falls, a seed gives a bit-identical run, resume equals an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.dataset import CropSampler, list_photos
from service.core.stylize.losses import LossWeights, PerceptualLoss, clip_as_served, gram_matrix
from service.core.stylize.nets import build_net
from service.core.stylize.train import TrainConfig, load_checkpoint, train
from tests.paintings import stripes

TINY = {"arch": "mobile", "batch": 2, "size": 32, "style_size": 64, "checkpoint_every": 0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return stripes()


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_gram_matrix_matches_definition() -> None:
    f = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4)
    flat = f.reshape(2, 12)
    assert torch.allclose(gram_matrix(f)[0], flat @ flat.T / 24)


def test_gram_matrix_gradient_is_autograds() -> None:
    """The Gram's own backward ((G' + G'^T) F, one product) against autograd's through bmm, and gradcheck."""
    from service.core.stylize.losses import _Gram

    torch.manual_seed(0)
    f = torch.randn(2, 6, 5, 7, requires_grad=True)
    weights = torch.randn(2, 6, 6)  # not symmetric, so both halves of the gradient count
    (gram_matrix(f) * weights).sum().backward()
    assert f.grad is not None
    ours = f.grad.clone()
    f.grad = None
    flat = f.reshape(2, 6, 35)
    ((torch.bmm(flat, flat.transpose(1, 2)) / (6 * 35)) * weights).sum().backward()
    assert torch.allclose(ours, f.grad, rtol=1e-5, atol=1e-6)
    assert torch.autograd.gradcheck(
        _Gram.apply, (torch.randn(2, 4, 9, dtype=torch.float64, requires_grad=True),)
    )


def test_clip_as_served_clips_forward_and_passes_the_gradient() -> None:
    x = torch.tensor([-0.5, 0.25, 2.0], requires_grad=True)
    y = clip_as_served(x)
    assert y.tolist() == [0.0, 0.25, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [1.0, 2.0, 3.0]  # straight through, also outside


def test_the_loss_sees_the_served_image_and_penalises_the_rest(lite0: Backbone, style: np.ndarray) -> None:
    style_t = torch.from_numpy(style).permute(2, 0, 1)[None].float() / 255
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    inside = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    # The same image with a bright out-of-range spot where the served (clipped) image is plain white.
    outside = inside.clone()
    outside[:, :, 8:12, 8:12] = 5.0
    served = outside.clamp(0, 1)
    clipped = PerceptualLoss(lite0, style_t, LossWeights(range=2.0))
    a, b = clipped(outside, content), clipped(served, content)
    for k in ("content", "style", "tv"):  # what the backbone sees is the served image
        assert torch.allclose(a[k], b[k])
    assert float(b["range"]) == 0.0
    assert float(a["range"]) == pytest.approx(2.0 * 4.0 * 16 * 3 / (3 * 32 * 32))  # weight x mean excess
    assert torch.allclose(a["total"], a["content"] + a["style"] + a["tv"] + a["range"])
    # The old objective (--no-clip-output) looks at the raw values: the spot changes its terms.
    raw = PerceptualLoss(lite0, style_t, LossWeights(), clip_output=False)
    c, d = raw(outside, content), raw(served, content)
    assert float(c["range"]) == 0.0 and not torch.allclose(c["style"], d["style"])
    assert torch.allclose(c["total"], c["content"] + c["style"] + c["tv"])


def test_a_few_steps_lower_the_loss(photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path) -> None:
    cfg = TrainConfig(steps=12, lr=1e-2, seed=1, **TINY)  # type: ignore[arg-type]
    result = train(cfg, style, photos, tmp_path, "falls", lite0)
    totals = [r["total"] for r in result.history]
    assert len(totals) == 12
    assert np.mean(totals[-3:]) < 0.7 * np.mean(totals[:3])
    assert (tmp_path / "falls.loss.csv").read_text().count("\n") == 13  # header + one row per step
    assert (tmp_path / "falls.loss.png").stat().st_size > 1000


def test_same_seed_gives_the_identical_run(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    cfg = TrainConfig(steps=3, seed=7, **TINY)  # type: ignore[arg-type]
    a = train(cfg, style, photos, tmp_path / "a", "s", lite0)
    b = train(cfg, style, photos, tmp_path / "b", "s", lite0)
    assert a.history == b.history
    sa, sb = _state(a.checkpoint), _state(b.checkpoint)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = train(TrainConfig(steps=3, seed=8, **TINY), style, photos, tmp_path / "c", "s", lite0)  # type: ignore[arg-type]
    assert not torch.equal(_state(other.checkpoint)["encoder.2.weight"], sa["encoder.2.weight"])


def test_resume_continues_to_the_same_result(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    whole = train(TrainConfig(steps=4, seed=3, **TINY), style, photos, tmp_path / "whole", "r", lite0)  # type: ignore[arg-type]
    part = tmp_path / "part"
    train(TrainConfig(steps=2, seed=3, **TINY), style, photos, part, "r", lite0)  # type: ignore[arg-type]
    assert load_checkpoint(part / "r.ckpt")["step"] == 2
    resumed = train(TrainConfig(steps=4, seed=3, **TINY), style, photos, part, "r", lite0, resume=True)  # type: ignore[arg-type]
    assert [r["step"] for r in resumed.history] == [1.0, 2.0, 3.0, 4.0]
    assert resumed.history == whole.history
    sw, sr = _state(whole.checkpoint), _state(resumed.checkpoint)
    assert all(torch.equal(sw[k], sr[k]) for k in sw)


def test_resume_trains_at_the_new_learning_rate(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    # An annealing stage resumes with a lower --lr; the optimizer state must not bring the old rate back.
    train(TrainConfig(steps=2, lr=1e-2, seed=3, **TINY), style, photos, tmp_path, "a", lite0)  # type: ignore[arg-type]
    before = _state(tmp_path / "a.ckpt")
    slow = TrainConfig(steps=4, lr=1e-9, seed=3, **TINY)  # type: ignore[arg-type]
    resumed = train(slow, style, photos, tmp_path, "a", lite0, resume=True)
    groups = load_checkpoint(resumed.checkpoint)["optimizer"]["param_groups"]
    assert {g["lr"] for g in groups} == {1e-9}
    after = _state(resumed.checkpoint)
    moved = max(float((after[k].float() - before[k].float()).abs().max()) for k in before)
    assert moved < 1e-6  # at the saved 1e-2 two Adam steps move weights by about 2e-2


def test_sampler_batches_depend_only_on_seed_and_step(photos: Path) -> None:
    files = list_photos(photos)
    a, b = CropSampler(files, 32, seed=5), CropSampler(files, 32, seed=5)
    assert torch.equal(a.batch(9, 3), b.batch(9, 3))
    assert not torch.equal(a.batch(9, 3), a.batch(10, 3))
    assert a.batch(0, 2).shape == (2, 3, 32, 32)


def test_bad_settings_and_inputs_are_typed_errors(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match="multiple of 4"):
        TrainConfig(size=30).validate()
    with pytest.raises(InvalidArgument, match="style weight"):
        TrainConfig(style_weight=-1).validate()
    with pytest.raises(InvalidArgument, match="does not exist"):
        list_photos(tmp_path / "missing")
    with pytest.raises(InvalidArgument, match="No images"):
        list_photos(tmp_path)
    with pytest.raises(InvalidArgument, match="does not exist"):
        train(TrainConfig(steps=2, **TINY), style, photos, tmp_path, "none", lite0, resume=True)  # type: ignore[arg-type]
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="Could not read checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")


def test_cli_train_writes_checkpoint_and_curve(photos: Path, tmp_path: Path) -> None:
    from service.cli import main

    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(tmp_path / "style.png")
    code = main(
        ["train", "--style-image", str(tmp_path / "style.png"), "--data", str(photos), "--name", "cli",
         "--steps", "2", "--batch", "1", "--size", "32", "--style-size", "48", "--out", str(tmp_path / "runs")]
    )  # fmt: skip
    assert code == 0
    ckpt = load_checkpoint(tmp_path / "runs" / "cli.ckpt")
    assert ckpt["step"] == 2 and ckpt["config"]["clip_output"] is True
    assert (tmp_path / "runs" / "cli.loss.csv").read_text().startswith("step,total,content,style,tv,range")
    # The old objective stays available, and the checkpoint says which one trained the net.
    code = main(
        ["train", "--style-image", str(tmp_path / "style.png"), "--data", str(photos), "--name", "old",
         "--steps", "1", "--batch", "1", "--size", "32", "--style-size", "48", "--out", str(tmp_path / "runs"),
         "--no-clip-output"]
    )  # fmt: skip
    assert code == 0 and load_checkpoint(tmp_path / "runs" / "old.ckpt")["config"]["clip_output"] is False


def test_training_continues_from_an_exported_model(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    """``--init-from X.onnx`` starts from the exported weights: step 1 of the fine-tune scores like the
    exported net, far below a fresh net's first step."""
    from service.core.stylize.export import export_onnx

    trained = train(TrainConfig(steps=12, lr=1e-2, seed=1, **TINY), style, photos, tmp_path / "a", "s", lite0)  # type: ignore[arg-type]
    net = build_net("mobile")
    net.load_state_dict(_state(trained.checkpoint))
    graph = export_onnx(net, tmp_path / "s.mobile.onnx")
    cfg = TrainConfig(steps=1, lr=1e-2, seed=1, **TINY)  # type: ignore[arg-type]
    fresh = train(cfg, style, photos, tmp_path / "b", "s", lite0)
    tuned = train(cfg, style, photos, tmp_path / "c", "s", lite0, init_from=graph)
    assert tuned.history[0]["total"] < 0.8 * fresh.history[0]["total"], (fresh.history, tuned.history)
