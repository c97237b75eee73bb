"""Training a transform network for one style (Johnson, Alahi & Fei-Fei 2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution", arXiv:1603.08155): Adam on random photo crops against the
perceptual loss of ``service.core.stylize.losses``.

Reproducible: the seed fixes the initial weights and, through ``CropSampler``, every batch. A checkpoint
holds the model, the optimiser, the AMP scaler, the step, the torch RNG states and the loss history, so a
resumed run ends with the same weights as an uninterrupted one (bit-identical on the CPU). On CUDA the
forward pass runs under bf16 autocast (no loss scaling needed), Gram matrices in float32.

Options against the crosshatch and the lost photo (measured in docs/training/ablation.md): ``shift_jitter``
(the same random translation of output and content before the loss, ``losses.shift_both``), ``swag``
(softmax-smoothed deep taps), and the identity warm start: ``identity=True`` trains the net to reproduce
the photos (pixel MSE + content loss, no style image), once per architecture, and a style run starts from
that checkpoint with ``init_from``. ``cpu_budget_s`` stops a run after that much process CPU time (counted
across resumes), so runs can be compared at equal cost.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.core.backbones import Backbone
from service.core.backbones.antialias import ANTIALIAS_MODES, antialiased
from service.core.errors import InvalidArgument, ModelLoadError
from service.core.progress import CancelToken, ProgressCallback
from service.core.stylize.dataset import CropSampler, list_photos
from service.core.stylize.distill import DistillCache, load_cache, painting_sha256
from service.core.stylize.grid_loss import grid_penalty
from service.core.stylize.laplacian_loss import laplacian_loss
from service.core.stylize.losses import LossWeights, PerceptualLoss, clip_as_served, shift_both
from service.core.stylize.nets import TransformNet, build_net
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side
from service.core.train_loop import StepBook, resume_optimizer
from service.core.weight_average import model_fields, resume_average, training_weights

LOSS_KEYS = ("total", "content", "style", "tv", "range", "pixel", "grid", "laplacian", "distill")


@dataclass
class TrainConfig:
    arch: str = "mobile"
    steps: int = 2000  # optimiser steps
    batch: int = 4  # crops per step
    size: int = 256  # training crop side, px
    style_size: int = 384  # the style image's longer side when its Gram targets are computed, px
    content_weight: float = 1.0
    style_weight: float = 10.0  # relative to content; both terms are normalised to start near 1
    tv_weight: float = 1e-4
    clip_output: bool = True  # the loss sees the output clipped to 0..255, as served (see PerceptualLoss)
    range_weight: float = 1.0  # penalty on output outside 0..255 (only with clip_output)
    lr: float = 1e-3
    backbone: str = "efficientnet_lite0"
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 500  # steps between checkpoints (0: only the final one)
    shift_jitter: int = 0  # roll output and content by the same random 0..N-1 px each step (0: off)
    swag: bool = False  # softmax over each deep tap before its Gram / content term (SWAG)
    identity: bool = False  # warm start: reproduce the photos (pixel MSE + content, no style image)
    pixel_weight: float = 100.0  # the pixel MSE's weight in an identity run (ignored otherwise)
    cpu_budget_s: float = 0.0  # stop after this much process CPU time, all resumes together (0: off)
    grid_weight: float = 0.0  # penalty on periodic 2/4/8 px patterns in the served output (grid_loss)
    grid_margin: float = 0.5  # log10 excess over the ring that the penalty lets pass (grid_loss)
    laplacian_weight: float = 0.0  # the pooled photo's edges kept (laplacian_loss, Li et al. 2017)
    batch_gram: bool = False  # the style term on one Gram of the whole batch, not one per crop
    antialias: str = ""  # the loss network blurs before stride-2 subsampling: "all", "deep" (Zhang 2019)
    distill: str = ""  # a cache of Gatys renders of training crops (stylize.distill); "" = off
    distill_weight: float = 1.0  # the feature distance to the Gatys render, on the cache's steps
    distill_every: int = 2  # every N-th step trains on the cache's crops instead of fresh ones
    ema: float = 0.0  # decay of the exported weight average (weight_average; 0: export the last step)

    def validate(self) -> None:
        for name in ("steps", "batch", "size", "style_size"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(
                    f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}."
                )
        if self.size < 16 or self.size % 4:
            raise InvalidArgument(f"--size must be a multiple of 4 and at least 16, got {self.size}.")
        if not self.lr > 0:
            raise InvalidArgument(f"--lr must be positive, got {self.lr}.")
        if self.checkpoint_every < 0:
            raise InvalidArgument("--checkpoint-every must be >= 0.")
        if not 0 <= self.shift_jitter <= self.size:
            raise InvalidArgument(f"--shift-jitter must be in 0..{self.size}, got {self.shift_jitter}.")
        if self.cpu_budget_s < 0:
            raise InvalidArgument("--cpu-budget must be >= 0.")
        if not self.grid_weight >= 0:
            raise InvalidArgument(f"--grid-weight must be >= 0, got {self.grid_weight}.")
        if not 0 <= self.grid_margin <= 4:
            raise InvalidArgument(f"--grid-margin must be in 0..4 (log10 units), got {self.grid_margin}.")
        if not self.laplacian_weight >= 0:
            raise InvalidArgument(f"--laplacian-weight must be >= 0, got {self.laplacian_weight}.")
        if not self.distill_weight >= 0:
            raise InvalidArgument(f"--distill-weight must be >= 0, got {self.distill_weight}.")
        if self.distill_every < 1:
            raise InvalidArgument(f"--distill-every must be at least 1, got {self.distill_every}.")
        if self.antialias and self.antialias not in ANTIALIAS_MODES:
            raise InvalidArgument(f"--antialias must be one of {', '.join(ANTIALIAS_MODES)}.")
        if not (self.ema == 0 or 0 < self.ema < 1):
            raise InvalidArgument(f"--ema must be 0 (off) or in (0, 1), got {self.ema}.")
        if self.distill and self.identity:
            raise InvalidArgument("--distill needs a style run, not --identity.")
        self.loss_weights()  # validates

    def loss_weights(self) -> LossWeights:
        if self.identity:  # no style term; the pixel MSE anchors the colours the content taps ignore
            return LossWeights(self.content_weight, 0.0, self.tv_weight, self.range_weight, self.pixel_weight)
        return LossWeights(self.content_weight, self.style_weight, self.tv_weight, self.range_weight)


@dataclass
class TrainResult:
    checkpoint: Path
    step: int
    losses: dict[str, float]  # mean of the last (up to) 50 steps
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint (tensors and plain containers only: ``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidArgument(f"Checkpoint {p} does not exist.")
    try:
        ckpt: dict[str, Any] = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or not a checkpoint: say so instead of a pickle traceback
        raise ModelLoadError(f"Could not read checkpoint {p}: {exc}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "arch" not in ckpt:
        raise ModelLoadError(f"{p} is not an atelier training checkpoint (no 'model'/'arch' entries).")
    return ckpt


def net_from_checkpoint(ckpt: dict[str, Any]) -> TransformNet:
    from service.core.stylize.nets.multi import MULTI_ARCH, multi_from_state

    if ckpt["arch"] == MULTI_ARCH:  # not in the registry: its size depends on the style count
        return multi_from_state(ckpt["model"]).eval()
    net = build_net(str(ckpt["arch"]))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise ModelLoadError(
            f"Checkpoint weights do not match the {ckpt['arch']} architecture: {exc}"
        ) from None
    return net.eval()


def write_loss_curve(history: list[dict[str, float]], csv_path: Path, png_path: Path | None) -> None:
    """The loss history as CSV (one row per step) and, optionally, a log-scale PNG plot."""
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["step", *LOSS_KEYS])
        for row in history:
            # .get: rows of a checkpoint written before the range term existed have no "range"
            writer.writerow([int(row["step"]), *(f"{row.get(k, 0.0):.6g}" for k in LOSS_KEYS)])
    if png_path is None or not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in history])
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    window = max(1, len(history) // 50)  # smooth per-batch noise so the trend is readable
    kernel = np.ones(window) / window
    for key in LOSS_KEYS:
        values = np.array([r.get(key, 0.0) for r in history])
        # e.g. the range term of a run without clip_output: nothing to plot on a log axis
        if not values.any():
            continue
        if window > 1:
            values = np.convolve(values, kernel, mode="valid")
        ax.plot(steps[: len(values)] + (window - 1), values, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    ax.set_title(csv_path.stem)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


def jitter_offset(seed: int, step: int, jitter: int) -> tuple[int, int]:
    """The (dy, dx) roll of step ``step``: from (seed, step) alone, so a resumed run rolls the same."""
    if jitter <= 0:
        return 0, 0
    rng = np.random.default_rng([seed, step, 1])  # a stream apart from the crop sampler's [seed, step]
    dy, dx = rng.integers(0, jitter, size=2)
    return int(dy), int(dx)


def load_init(path: str | Path) -> dict[str, Any]:
    """The checkpoint to start from: a ``.ckpt``, or a shipped model's ``.onnx`` (weights read from the
    graph)."""
    if Path(path).suffix == ".onnx":
        from service.core.stylize.onnx_weights import checkpoint_from_onnx

        return checkpoint_from_onnx(path)
    return load_checkpoint(path)


def style_target(style_image: np.ndarray, style_size: int, device: torch.device) -> torch.Tensor:
    """The painting as the (1, 3, H, W) [0, 1] batch its Gram targets are computed from, longer side
    ``style_size``."""
    style = image_to_tensor(style_image, device)
    return resize_tensor(style, *scale_to_side(style.shape[2], style.shape[3], style_size))


def recipe_loss(
    config: TrainConfig, backbone: Backbone, style_image: np.ndarray | None, device: torch.device
) -> PerceptualLoss:
    """The perceptual loss of ``config`` against ``style_image`` (``None``: the identity warm start's)."""
    style = None if style_image is None else style_target(style_image, config.style_size, device)
    return PerceptualLoss(
        antialiased(backbone, config.antialias) if config.antialias else backbone,
        style,
        config.loss_weights(),
        clip_output=config.clip_output,
        swag=config.swag,
        batch_gram=config.batch_gram,
    ).to(device)


def step_terms(
    config: TrainConfig,
    loss_fn: PerceptualLoss,
    stylized: torch.Tensor,
    content: torch.Tensor,
    step: int,
    teacher: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The loss terms of one step: the net's output and the content batch (0..255), rolled by the step's
    jitter, against ``loss_fn``, plus the grid penalty, the Laplacian structure term and, when the batch
    comes from the distillation cache, the distance to the Gatys renders ``teacher`` (0..255, rolled with
    the others); under the keys of ``LOSS_KEYS``."""
    seen, photo = stylized / 255.0, content / 255.0  # the loss works on [0, 1]
    painted = None if teacher is None else teacher / 255.0
    if config.shift_jitter:
        dy, dx = jitter_offset(config.seed, step, config.shift_jitter)
        seen, photo = shift_both(seen, photo, dy, dx)
        if painted is not None:
            painted = painted.roll((dy, dx), dims=(2, 3))
    terms = loss_fn(seen, photo, painted)
    terms["distill"] = torch.zeros((), device=stylized.device)
    if painted is not None:
        terms["distill"] = config.distill_weight * terms.pop("teacher")
        terms["total"] = terms["total"] + terms["distill"]
    terms["grid"] = torch.zeros((), device=stylized.device)
    if config.grid_weight:
        # On the image as served (clipped), unrolled: the crosshatch sits at the net's own phase.
        terms["grid"] = config.grid_weight * grid_penalty(
            clip_as_served(stylized / 255.0), config.grid_margin
        )
        terms["total"] = terms["total"] + terms["grid"]
    terms["laplacian"] = torch.zeros((), device=stylized.device)
    if config.laplacian_weight:
        terms["laplacian"] = config.laplacian_weight * laplacian_loss(clip_as_served(seen), photo)
        terms["total"] = terms["total"] + terms["laplacian"]
    return terms


def train(
    config: TrainConfig,
    style_image: np.ndarray | None,
    data_dir: str | Path,
    out_dir: str | Path,
    name: str,
    backbone: Backbone,
    resume: bool = False,
    init_from: str | Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train ``config.arch`` on crops of the photos in ``data_dir`` towards ``style_image`` ((H, W, 3) uint8;
    ``None`` for an identity run).

    Writes ``<out_dir>/<name>.ckpt`` (every ``checkpoint_every`` steps and at the end) and the loss curve
    ``<name>.loss.csv`` / ``.png``. ``resume`` continues from an existing checkpoint of the same name;
    ``init_from`` starts from another checkpoint's weights (same architecture), e.g. to fine-tune one style
    into another, with a fresh optimiser; an exported ``.onnx`` file works too (its weights are read from
    the graph), so a shipped model can be trained further without its checkpoint. ``backbone`` must
    already be on ``config.device``.
    """
    config.validate()
    device = torch.device(config.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / f"{name}.ckpt"
    files = list_photos(data_dir)
    sampler = CropSampler(files, config.size, config.seed)

    torch.manual_seed(config.seed)
    net = build_net(config.arch).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    if style_image is None and not config.identity:
        raise InvalidArgument("A style run needs a style image (--style-image), or use --identity.")
    style_sha = "" if config.identity or style_image is None else painting_sha256(style_image)
    cache: DistillCache | None = None
    if config.distill:
        cache = load_cache(config.distill)
        if cache.style_sha256 != style_sha:
            raise InvalidArgument(f"--distill {config.distill} was rendered from another painting.")
        if cache.size != config.size:
            raise InvalidArgument(
                f"--distill {config.distill} holds {cache.size} px crops, not {config.size}."
            )
    start, history, cpu_before = 0, [], 0.0
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["arch"] != config.arch:
            raise InvalidArgument(f"Checkpoint {ckpt_path} is a {ckpt['arch']} net, not {config.arch}.")
        net.load_state_dict(training_weights(ckpt))
        resume_optimizer(optimizer, ckpt["optimizer"], config.lr)
        start, history = int(ckpt["step"]), list(ckpt["history"])
        cpu_before = float(ckpt.get("cpu_seconds", 0.0))
        set_rng_state(ckpt["rng"], device)
    elif init_from is not None:
        init = load_init(init_from)
        if init["arch"] != config.arch:
            raise InvalidArgument(f"--init-from {init_from} is a {init['arch']} net, not {config.arch}.")
        net.load_state_dict(init["model"])
    average = resume_average(ckpt if resume else {}, net, config.ema)

    def fields(step: int) -> dict[str, Any]:
        return {
            "arch": config.arch,
            **model_fields(net, average),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(device),
            "config": asdict(config),
            "style_sha256": style_sha,
            "name": name,
            "photos": len(files),
        }

    book = StepBook(
        config,
        ckpt_path=ckpt_path,
        start=start,
        keys=LOSS_KEYS,
        history=history,
        fields=fields,
        after_save=lambda: write_loss_curve(history, out / f"{name}.loss.csv", out / f"{name}.loss.png"),
        cpu_before=cpu_before,
        progress=progress,
    )

    loss_fn = recipe_loss(config, backbone, None if config.identity else style_image, device)
    use_amp = device.type == "cuda"

    book.begin()
    net.train()
    for step in range(start, config.steps):
        if cancel is not None:
            cancel.check()
        teacher = None
        if cache is not None and step % config.distill_every == 0:
            content, teacher = (t.to(device) for t in cache.batch(config.seed, step, config.batch))
        else:
            content = sampler.batch(step, config.batch).to(device, non_blocking=True)  # (B, 3, S, S), 0..255
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            terms = step_terms(config, loss_fn, net(content), content, step, teacher)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if average is not None:
            average.update(net)
        if book.record(step, terms):
            break
    last, final, seconds = book.finish()
    return TrainResult(ckpt_path, last, final, history, seconds)
