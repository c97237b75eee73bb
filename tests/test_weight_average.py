"""The exported weight average (--ema): its arithmetic, that it leaves training alone, and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.stylize.train import TrainConfig, load_checkpoint, net_from_checkpoint, train
from service.core.stylize.train_multi import StyleSource, train_multi
from service.core.weight_average import WeightAverage, resume_average, training_weights
from tests.paintings import stripes

TINY = {"arch": "mobile", "batch": 2, "size": 32, "style_size": 64, "checkpoint_every": 0, "seed": 3}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def style() -> np.ndarray:
    return stripes()


def test_the_average_follows_its_closed_form() -> None:
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(0.0)
    avg = WeightAverage(net, decay=0.5)
    for value in (4.0, 8.0):
        with torch.no_grad():
            net.weight.fill_(value)
        avg.update(net)
    # 0 -> 0.5*0 + 0.5*4 = 2 -> 0.5*2 + 0.5*8 = 5
    assert torch.allclose(avg.avg["weight"], torch.full((1, 2), 5.0))
    fields = avg.checkpoint_fields(net)
    assert torch.allclose(fields["model_raw"]["weight"], torch.full((1, 2), 8.0))


def test_bad_decays_are_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(2, 1), decay=1.0)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(InvalidArgument, match="--ema"):
            TrainConfig(ema=bad).validate()
    assert resume_average({}, nn.Linear(2, 1), 0.0) is None


def test_an_average_from_another_net_is_refused() -> None:
    with pytest.raises(ValueError, match="do not match"):
        WeightAverage(nn.Linear(2, 1), 0.9, nn.Linear(3, 1, bias=False).state_dict())


def test_ema_exports_the_average_and_trains_as_without_it(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    plain = train(TrainConfig(steps=4, **TINY), style, photos, tmp_path / "plain", "r", lite0)  # type: ignore[arg-type]
    ema = train(TrainConfig(steps=4, ema=0.5, **TINY), style, photos, tmp_path / "ema", "r", lite0)  # type: ignore[arg-type]
    p, e = load_checkpoint(plain.checkpoint), load_checkpoint(ema.checkpoint)
    assert plain.history == ema.history  # the average never feeds back into training
    assert all(torch.equal(p["model"][k], e["model_raw"][k]) for k in p["model"])
    moved = [k for k in p["model"] if not torch.equal(e["model"][k], e["model_raw"][k])]
    assert moved  # the exported weights are the average, not the last step
    loaded = net_from_checkpoint(e).state_dict()
    assert all(torch.equal(loaded[k], e["model"][k]) for k in loaded)


def test_ema_resume_continues_the_average(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    whole = train(TrainConfig(steps=4, ema=0.5, **TINY), style, photos, tmp_path / "w", "r", lite0)  # type: ignore[arg-type]
    part = tmp_path / "p"
    train(TrainConfig(steps=2, ema=0.5, **TINY), style, photos, part, "r", lite0)  # type: ignore[arg-type]
    resumed = train(TrainConfig(steps=4, ema=0.5, **TINY), style, photos, part, "r", lite0, resume=True)  # type: ignore[arg-type]
    w, r = load_checkpoint(whole.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("model", "model_raw"):
        assert all(torch.allclose(w[key][k], r[key][k], atol=1e-6) for k in w[key]), key
    assert training_weights(r) is r["model_raw"]


def test_train_multi_keeps_the_average_and_resumes_it(
    photos: Path, style: np.ndarray, lite0: Backbone, tmp_path: Path
) -> None:
    styles = []
    for k, name in enumerate(("stripes", "turned")):
        painted = np.ascontiguousarray(np.rot90(style, k))
        Image.fromarray(painted).save(tmp_path / f"{name}.png")
        styles.append(StyleSource(name, painted, file=tmp_path / f"{name}.png"))
    cfg = {"batch": 2, "size": 32, "style_size": 64, "checkpoint_every": 0, "seed": 2, "ema": 0.5}
    whole = train_multi(TrainConfig(steps=4, **cfg), styles, photos, tmp_path / "w", "m", lite0)
    train_multi(TrainConfig(steps=2, **cfg), styles, photos, tmp_path / "p", "m", lite0)
    resumed = train_multi(
        TrainConfig(steps=4, **cfg), styles, photos, tmp_path / "p", "m", lite0, resume=True
    )
    w, r = load_checkpoint(whole.checkpoint), load_checkpoint(resumed.checkpoint)
    assert resumed.history == whole.history
    for key in ("model", "model_raw"):
        assert all(torch.allclose(w[key][k], r[key][k], atol=1e-6) for k in w[key]), key
    assert any(not torch.equal(w["model"][k], w["model_raw"][k]) for k in w["model"])
