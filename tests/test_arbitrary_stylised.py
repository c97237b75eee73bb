"""The stylised-feature term of WCT decoder training (service/core/arbitrary/stylised_loss.py): AdaIN
recolouring gives the painting's channel statistics, the held-out paintings are refused, and a short run
with the term lowers it where a photos-only run does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from service.core.arbitrary.stylised_loss import PaintingStats, recolour
from service.core.arbitrary.train_decoder import (
    EVAL_PAINTINGS,
    DecoderConfig,
    ReconstructionLoss,
    decoder_from_checkpoint,
    load_decoder_checkpoint,
    train_decoder,
)
from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.stylize.evaluate import list_images
from tests.arbitrary_models import painting


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    photos, art = tmp_path_factory.mktemp("photos"), tmp_path_factory.mktemp("paintings")
    for i in range(6):
        Image.fromarray(painting(200 + i, (64, 80))).save(photos / f"photo_{i}.png")
    for i in range(2):
        Image.fromarray(painting(300 + i, (72, 96))).save(art / f"training_painting_{i}.png")
    return photos, art


def config(steps: int, **kw: object) -> DecoderConfig:
    base: dict[str, object] = dict(
        tap="stem", steps=steps, batch=2, size=32, lr=3e-3, width_scale=0.5, checkpoint_every=0,
        painting_size=64,
    )  # fmt: skip
    return DecoderConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_recolour_gives_each_image_the_paintings_channel_statistics() -> None:
    gen = torch.Generator().manual_seed(0)
    f = torch.rand(2, 5, 8, 8, generator=gen) * 2 + 1
    means, stds = torch.full((2, 5), 3.0), torch.full((2, 5), 0.5)
    out = recolour(f, means, stds)
    torch.testing.assert_close(out.mean(dim=(2, 3)), means, atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(2, 3)), stds, atol=1e-3, rtol=0)
    assert float(recolour(f, torch.full((2, 5), 50.0), stds).max()) == 6.0  # the ReLU6 range


def test_held_out_paintings_are_refused(lite0: Backbone, folders: tuple[Path, Path], tmp_path: Path) -> None:
    Image.fromarray(painting(1)).save(tmp_path / f"{EVAL_PAINTINGS[0]}.png")
    with pytest.raises(InvalidArgument, match="Held-out"):
        PaintingStats.from_files(list(list_images(tmp_path).values()), lite0, "stem", 64, EVAL_PAINTINGS)
    with pytest.raises(InvalidArgument, match="--paintings"):
        train_decoder(config(2, stylised_weight=1.0), folders[0], tmp_path / "out", lite0)
    with pytest.raises(InvalidArgument, match="Held-out"):
        train_decoder(
            config(2, stylised_weight=1.0), folders[0], tmp_path / "out", lite0, paintings_dir=tmp_path
        )


def test_the_term_falls_when_trained_and_the_checkpoint_names_the_paintings(
    lite0: Backbone, folders: tuple[Path, Path], tmp_path: Path
) -> None:
    photos, art = folders
    stats = PaintingStats.from_files(list(list_images(art).values()), lite0, "stem", 64, EVAL_PAINTINGS)
    assert stats.means.shape == (2, 32) and list(stats.pick(0, 7, 4)) == list(stats.pick(0, 7, 4))
    batch = torch.stack([
        torch.from_numpy(painting(400 + i, (32, 32))).permute(2, 0, 1).float() / 255.0 for i in range(4)
    ])  # fmt: skip

    def stylised_term(ckpt: Path, cfg: DecoderConfig) -> float:
        decoder = decoder_from_checkpoint(load_decoder_checkpoint(ckpt))
        with torch.no_grad():
            terms = ReconstructionLoss(lite0, cfg, 2, stats)(decoder, batch, 0)
        return float(terms["stylised"])

    probe = config(1, stylised_weight=1.0)
    with_term = train_decoder(
        config(40, stylised_weight=1.0), photos, tmp_path / "a", lite0, paintings_dir=art
    )
    photos_only = train_decoder(config(40), photos, tmp_path / "b", lite0)
    assert load_decoder_checkpoint(with_term.checkpoint)["paintings"] == [
        "training_painting_0",
        "training_painting_1",
    ]
    assert all(r["stylised"] > 0 for r in with_term.history) and all(
        r["stylised"] == 0 for r in photos_only.history
    )
    assert stylised_term(with_term.checkpoint, probe) < stylised_term(photos_only.checkpoint, probe)
