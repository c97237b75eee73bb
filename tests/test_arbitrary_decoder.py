"""WCT decoders (service/core/arbitrary/decoder.py, train_decoder.py, export.py): a short training run
lowers the reconstruction loss and resumes where it stopped; the exported encoder and decoder graphs
match PyTorch at odd sizes and are registered with cards; the photos-only rule is enforced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.core.arbitrary.decoder import Decoder, tap_geometry
from service.core.arbitrary.export import (
    ENCODER_PARITY_LIMIT,
    PARITY_LIMIT,
    decoder_parity,
    encoder_parity,
    export_decoder_onnx,
    export_encoder_onnx,
    install_decoder,
)
from service.core.arbitrary.train_decoder import (
    DecoderConfig,
    decoder_from_checkpoint,
    load_decoder_checkpoint,
    reconstruction_loss,
    train_decoder,
)
from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.stylize.manifest import read_card, read_manifest
from tests.arbitrary_models import painting


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six generated 'photos' (64 x 80), written as PNG: the training folder."""
    folder = tmp_path_factory.mktemp("photos")
    for i in range(6):
        Image.fromarray(painting(100 + i, (64, 80))).save(folder / f"photo_{i}.png")
    return folder


def config(steps: int, **kw: object) -> DecoderConfig:
    base: dict[str, object] = dict(
        tap="stem", steps=steps, batch=2, size=32, lr=3e-3, width_scale=0.5, checkpoint_every=0
    )
    return DecoderConfig(**{**base, **kw})  # type: ignore[arg-type]


def fixed_batch(photos: Path) -> torch.Tensor:
    arrays = [np.asarray(Image.open(p))[:32, :32] for p in sorted(photos.iterdir())[:4]]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def test_short_run_lowers_the_reconstruction_loss(lite0: Backbone, photos: Path, tmp_path: Path) -> None:
    cfg = config(40)
    torch.manual_seed(cfg.seed)  # the run's own initial weights (train_decoder seeds the same way)
    g = tap_geometry(lite0, cfg.tap)
    before = reconstruction_loss(
        Decoder(g.channels, g.stride, cfg.width_scale), lite0, cfg, fixed_batch(photos)
    )
    result = train_decoder(cfg, photos, tmp_path, lite0)
    ckpt = load_decoder_checkpoint(result.checkpoint)
    after = reconstruction_loss(decoder_from_checkpoint(ckpt), lite0, cfg, fixed_batch(photos))
    assert result.step == 40 and len(result.history) == 40
    assert after["total"] < 0.7 * before["total"], (before, after)
    assert after["pixel"] < before["pixel"]
    assert (tmp_path / "wct.stem.loss.csv").read_text().count("\n") == 41


def test_resume_continues_to_the_same_weights(lite0: Backbone, photos: Path, tmp_path: Path) -> None:
    whole = train_decoder(config(6), photos, tmp_path / "whole", lite0)
    train_decoder(config(3), photos, tmp_path / "split", lite0)
    resumed = train_decoder(config(6), photos, tmp_path / "split", lite0, resume=True)
    assert resumed.step == 6 and [r["step"] for r in resumed.history] == [float(i) for i in range(1, 7)]
    a = load_decoder_checkpoint(whole.checkpoint)["model"]
    b = load_decoder_checkpoint(resumed.checkpoint)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    with pytest.raises(InvalidArgument, match="already at step 6"):
        train_decoder(config(6), photos, tmp_path / "split", lite0, resume=True)


def test_cpu_budget_stops_the_run(lite0: Backbone, photos: Path, tmp_path: Path) -> None:
    result = train_decoder(config(1000, cpu_budget_s=1e-6), photos, tmp_path, lite0)
    assert result.step == 1  # the budget is checked after each step


def test_training_refuses_evaluation_paintings_and_bad_flags(
    lite0: Backbone, photos: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(painting(1)).save(folder / "klimt_the_kiss.png")
    with pytest.raises(InvalidArgument, match="evaluation paintings"):
        train_decoder(config(2), folder, tmp_path, lite0)
    with pytest.raises(InvalidArgument, match="--tap"):
        train_decoder(config(2, tap="head"), photos, tmp_path, lite0)
    with pytest.raises(InvalidArgument, match="--size"):
        train_decoder(config(2, size=40), photos, tmp_path, lite0)


@pytest.mark.parametrize("tap", ["stem", "block5.expand"])
def test_export_parity_at_odd_sizes(lite0: Backbone, tmp_path: Path, tap: str) -> None:
    g = tap_geometry(lite0, tap)
    decoder = Decoder(g.channels, g.stride, 0.25)
    dec = decoder_parity(decoder, export_decoder_onnx(decoder, tmp_path / "d.onnx"))
    enc = encoder_parity(lite0, tap, export_encoder_onnx(lite0, tap, tmp_path / "e.onnx"))
    assert all(int(h) % 2 and int(w) % 2 for h, w in (k.split("x") for k in dec)), dec  # odd feature maps
    assert all(int(h) % 2 and int(w) % 2 for h, w in (k.split("x") for k in enc)), enc  # odd images
    assert max(dec.values()) <= PARITY_LIMIT and max(enc.values()) <= ENCODER_PARITY_LIMIT


def test_install_registers_both_graphs_with_cards(lite0: Backbone, tmp_path: Path) -> None:
    g = tap_geometry(lite0, "stem")
    card = install_decoder(Decoder(g.channels, g.stride, 0.25), lite0, "stem", tmp_path, version="3")
    entries = {e.name: e for e in read_manifest(tmp_path)}
    assert {n: e.kind for n, e in entries.items()} == {"lite0.stem": "encoder", "wct.stem": "decoder"}
    assert card["encoder"] == "lite0.stem" and card["tap"] == "stem" and card["stride"] == 2
    enc_card = read_card(tmp_path / entries["lite0.stem"].card)
    assert enc_card.parity_max_abs and enc_card.backbone == "efficientnet_lite0"
    # The style models' manifest format is unchanged for them: "kind" is written only for the new kinds.
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert all(m["kind"] in ("encoder", "decoder") for m in raw["models"])
