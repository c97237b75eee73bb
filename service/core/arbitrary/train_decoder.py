"""Training a WCT decoder (Li et al., NeurIPS 2017, arXiv:1705.08086, section 3.1): a decoder learns to
invert the frozen Lite0 encoder at one tap, on photos only.

Loss per step, on a batch of random photo crops ``x`` (``service.core.stylize.dataset.CropSampler``) in
[0, 1], with ``f = Lite0(x)`` at the tap and ``y = decoder(f)``:

* ``pixel``: ``mean((y - x)^2)``, times ``pixel_weight``;
* ``feature``: ``mean((Lite0(y') - Lite0(x'))^2) / mean(Lite0(x')^2)`` times ``feature_weight``, where
  ``y'``, ``x'`` are ``y`` (clipped to 0..1 as served, straight-through) and ``x`` rolled by the same random
  offset below ``shift_jitter`` (``service.core.stylize.losses.shift_both``): the fast-style lesson that a
  loss network sampled at one fixed phase rewards patterns locked to its grid;
* ``grid`` (off by default): ``grid_weight * grid_penalty(y)`` (``service.core.stylize.grid_loss``), the
  differentiable crosshatch score, for a decoder that still paints one;
* ``stylised`` (off by default): ``stylised_weight`` times the cycle term of ``stylised_loss.py``: the
  photo's features recoloured with a training painting's channel statistics must survive decoding and
  re-encoding. It needs ``paintings`` (a folder of training-side paintings).

The photos are the training set; paintings enter only through the ``stylised`` term, and the evaluation
paintings never (``EVAL_PAINTINGS`` are refused by name in both folders).

Conventions of ``atelier train`` (``service.core.stylize.train``): batches reproducible from (seed, step),
checkpoints atomic and resumable (model, optimiser, step, RNG, history, CPU seconds), ``cpu_budget_s``
counts process CPU time across resumes, progress through a ``ProgressCallback``.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from service.core.arbitrary.decoder import TAPS, Decoder, tap_geometry
from service.core.arbitrary.stylised_loss import PaintingStats, recolour
from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, ModelLoadError
from service.core.progress import CancelToken, ProgressCallback
from service.core.stylize.dataset import CropSampler, list_photos
from service.core.stylize.evaluate import list_images
from service.core.stylize.grid_loss import grid_penalty
from service.core.stylize.losses import clip_as_served, shift_both
from service.core.stylize.train import jitter_offset
from service.core.train_loop import StepBook, resume_optimizer

LOSS_KEYS = ("total", "pixel", "feature", "grid", "stylised")
CHECKPOINT_KIND = "wct_decoder"
# The seven paintings of issue 20 kept for evaluation: never in training, tuning or model selection.
EVAL_PAINTINGS: tuple[str, ...] = (
    "cezanne_trees_and_houses",
    "degas_dance_foyer_at_the_opera",
    "gauguin_three_tahitian_women",
    "klimt_the_kiss",
    "monet_water_lilies_1919",
    "seurat_sunday_on_la_grande_jatte",
    "turner_the_shipwreck",
)


@dataclass
class DecoderConfig:
    tap: str = "block5.expand"
    steps: int = 20_000
    batch: int = 8
    size: int = 256  # crop side, px; a multiple of 16
    lr: float = 1e-3
    pixel_weight: float = 10.0
    feature_weight: float = 1.0
    grid_weight: float = 0.0
    stylised_weight: float = 0.0  # the cycle term on painting-coloured features (needs paintings)
    painting_size: int = 128  # the paintings' longer side when their statistics are taken, px
    shift_jitter: int = -1  # roll before the feature loss by 0..N-1 px; -1: the tap's stride; 0: off
    width_scale: float = 1.0  # decoder widths (decoder.WIDTHS) times this
    backbone: str = "efficientnet_lite0"
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 500  # steps between checkpoints (0: only the last)
    cpu_budget_s: float = 0.0  # stop after this much process CPU time, resumes included (0: off)

    def validate(self) -> None:
        if self.tap not in TAPS:
            raise InvalidArgument(f"--tap must be one of {', '.join(TAPS)}, got {self.tap!r}.")
        for name in ("steps", "batch"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(f"--{name} must be positive, got {getattr(self, name)}.")
        if self.size < 32 or self.size % 16:
            raise InvalidArgument(f"--size must be a multiple of 16 and at least 32, got {self.size}.")
        if not self.lr > 0 or not self.width_scale > 0:
            raise InvalidArgument("--lr and --width-scale must be positive.")
        if min(self.pixel_weight, self.feature_weight, self.grid_weight, self.stylised_weight) < 0:
            raise InvalidArgument("Loss weights must be >= 0.")
        if self.checkpoint_every < 0 or self.cpu_budget_s < 0 or self.shift_jitter < -1:
            raise InvalidArgument("--checkpoint-every, --cpu-budget must be >= 0, --shift-jitter >= -1.")


@dataclass
class DecoderResult:
    checkpoint: Path
    step: int
    losses: dict[str, float]  # mean of the last (up to) 50 steps
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def check_photos_only(files: list[Path]) -> None:
    """Refuse a data folder holding an evaluation painting (by file name): the decoders see photos only."""
    leaked = sorted({p.stem for p in files} & set(EVAL_PAINTINGS))
    if leaked:
        raise InvalidArgument(
            f"The training folder holds evaluation paintings ({', '.join(leaked)}); decoders train on photos."
        )


def load_decoder_checkpoint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InvalidArgument(f"Checkpoint {p} does not exist.")
    try:
        ckpt: dict[str, Any] = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a checkpoint: say so instead of a pickle traceback
        raise ModelLoadError(f"Could not read checkpoint {p}: {exc}") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise ModelLoadError(f"{p} is not a WCT decoder checkpoint (`atelier train-decoder`).")
    return ckpt


def decoder_from_checkpoint(ckpt: dict[str, Any]) -> Decoder:
    net = Decoder(int(ckpt["channels"]), int(ckpt["stride"]), float(ckpt["width_scale"]))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise ModelLoadError(f"Checkpoint weights do not match the decoder: {exc}") from None
    return net.eval()


class ReconstructionLoss:
    """The loss of the module docstring for one tap; ``__call__(decoder, x, step)`` -> terms."""

    def __init__(
        self, backbone: Backbone, config: DecoderConfig, stride: int, paintings: PaintingStats | None = None
    ) -> None:
        self.backbone, self.config, self.paintings = backbone, config, paintings
        self.jitter = stride if config.shift_jitter < 0 else config.shift_jitter

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x, [self.config.tap])[self.config.tap]

    def __call__(self, decoder: Decoder, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        c = self.config
        with torch.no_grad():
            f = self.encode(x)
        y = decoder(f) / 255.0
        terms = {"pixel": c.pixel_weight * torch.mean((y - x) ** 2)}
        seen, photo = shift_both(clip_as_served(y), x, *jitter_offset(c.seed, step, self.jitter))
        with torch.no_grad():
            target = self.encode(photo) if self.jitter else f
        scale = target.pow(2).mean().clamp_min(1e-8)
        terms["feature"] = c.feature_weight * torch.mean((self.encode(seen) - target) ** 2) / scale
        terms["grid"] = c.grid_weight * grid_penalty(clip_as_served(y)) if c.grid_weight else y.new_zeros(())
        terms["stylised"] = y.new_zeros(())
        if c.stylised_weight and self.paintings is not None:
            k = self.paintings.pick(c.seed, step, f.shape[0])
            coloured = recolour(f, self.paintings.means[k].to(f), self.paintings.stds[k].to(f))
            again = self.encode(clip_as_served(decoder(coloured) / 255.0))
            scale_s = coloured.pow(2).mean().clamp_min(1e-8)
            terms["stylised"] = c.stylised_weight * torch.mean((again - coloured) ** 2) / scale_s
        terms["total"] = terms["pixel"] + terms["feature"] + terms["grid"] + terms["stylised"]
        return terms


def write_history(history: list[dict[str, float]], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", *LOSS_KEYS])
        for row in history:
            writer.writerow([int(row["step"]), *(f"{row.get(k, 0.0):.6g}" for k in LOSS_KEYS)])


def train_decoder(
    config: DecoderConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    backbone: Backbone,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    paintings_dir: str | Path | None = None,
) -> DecoderResult:
    """Train the decoder of ``config.tap`` on crops of the photos in ``data_dir``.

    Writes ``<out_dir>/wct.<tap>.ckpt`` (every ``checkpoint_every`` steps and at the end) and the loss
    history ``wct.<tap>.loss.csv``; ``resume`` continues from that checkpoint. ``backbone`` must be on
    ``config.device``; it stays frozen (gradients flow through it to the decoder only)."""
    config.validate()
    device = torch.device(config.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / f"wct.{config.tap}.ckpt"
    files = list_photos(data_dir)
    check_photos_only(files)
    sampler = CropSampler(files, config.size, config.seed)
    geometry = tap_geometry(backbone, config.tap)
    backbone.eval().requires_grad_(False)
    torch.manual_seed(config.seed)
    decoder = Decoder(geometry.channels, geometry.stride, config.width_scale).to(device)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=config.lr)
    start, history, cpu_before = 0, [], 0.0
    if resume:
        ckpt = load_decoder_checkpoint(ckpt_path)
        if ckpt["tap"] != config.tap or float(ckpt["width_scale"]) != config.width_scale:
            raise InvalidArgument(f"Checkpoint {ckpt_path} is for another tap or width.")
        decoder.load_state_dict(ckpt["model"])
        resume_optimizer(optimizer, ckpt["optimizer"], config.lr)
        start, history = int(ckpt["step"]), list(ckpt["history"])
        cpu_before = float(ckpt.get("cpu_seconds", 0.0))
        torch.set_rng_state(ckpt["rng"])
    paintings = None
    if config.stylised_weight:
        if paintings_dir is None:
            raise InvalidArgument(
                "--stylised-weight needs --paintings (a folder of training-side paintings)."
            )
        paintings = PaintingStats.from_files(
            list(list_images(paintings_dir).values()),
            backbone,
            config.tap,
            config.painting_size,
            EVAL_PAINTINGS,
        )
    loss_fn = ReconstructionLoss(backbone, config, geometry.stride, paintings)

    def fields(step: int) -> dict[str, Any]:
        return {
            "kind": CHECKPOINT_KIND,
            "tap": config.tap,
            "channels": geometry.channels,
            "stride": geometry.stride,
            "width_scale": config.width_scale,
            "model": decoder.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "config": asdict(config),
            "photos": len(files),
            "paintings": list(paintings.names) if paintings is not None else [],
        }

    book = StepBook(
        config,
        ckpt_path=ckpt_path,
        start=start,
        keys=LOSS_KEYS,
        history=history,
        fields=fields,
        after_save=lambda: write_history(history, out / f"wct.{config.tap}.loss.csv"),
        cpu_before=cpu_before,
        progress=progress,
    )
    decoder.train()
    for step in range(start, config.steps):
        if cancel is not None:
            cancel.check()
        x = sampler.batch(step, config.batch).to(device, non_blocking=True) / 255.0
        terms = loss_fn(decoder, x, step)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if book.record(step, terms):
            break
    last, final, seconds = book.finish()
    return DecoderResult(ckpt_path, last, final, history, seconds)


def reconstruction_loss(
    decoder: Decoder, backbone: Backbone, config: DecoderConfig, images: torch.Tensor
) -> dict[str, float]:
    """The loss terms of ``decoder`` on a fixed batch ((B, 3, S, S) in [0, 1]), without training: for
    before/after comparisons and held-out photos."""
    loss_fn = ReconstructionLoss(backbone, config, decoder.stride)
    with torch.no_grad():
        terms = loss_fn(decoder.eval(), images, 0)
    return {k: float(v) for k, v in terms.items()}
