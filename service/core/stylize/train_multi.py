"""Training one multi-style net (``mobile2_multi``) on several paintings at once (Dumoulin, Shlens & Kudlur
2017, "A Learned Representation for Artistic Style", arXiv:1610.07629, section 3).

Each step trains one style: the batch of photo crops goes through the net with that style's one-hot
vector against that painting's Gram targets, so the shared convolutions see every style in turn and each
style's table rows get the gradient of their own steps only. A step costs what a single-style step costs,
whatever the number of styles (the interpolation is one (N, S) x (S, C) product per table). The style of
step ``t`` comes from (seed, t) alone, round-robin or seeded random, so a resumed run is bit-identical to
an uninterrupted one on the CPU, as ``stylize.train``'s runs are.

The recipe is ``stylize.train``'s, lever for lever (``TrainConfig``: shift jitter, content, style and grid
weights, CPU budget, checkpoints): the loss of a step is ``train.step_terms``. A run can start from a
single-style ``mobile2`` checkpoint (the identity warm start shared by all styles, or a trained style):
every style's rows then start at that net's values (``MultiStyleNet.load_single``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback
from service.core.stylize.dataset import CropSampler, list_photos
from service.core.stylize.manifest import sha256_file
from service.core.stylize.nets.multi import BASE_ARCH, MULTI_ARCH, MultiStyleNet, one_hot
from service.core.stylize.train import (
    LOSS_KEYS,
    TrainConfig,
    TrainResult,
    load_checkpoint,
    load_init,
    recipe_loss,
    rng_state,
    set_rng_state,
    sha256_bytes,
    step_terms,
    write_loss_curve,
)
from service.core.train_loop import StepBook, resume_optimizer
from service.core.weight_average import model_fields, resume_average, training_weights

MULTI_KEYS = (*LOSS_KEYS, "style_index")  # each history row says which style its step trained
ORDERS = ("round_robin", "random")
STYLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class StyleSource:
    """One painting to train: its style name, pixels and, where known, its file and provenance."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8
    file: Path | None = None  # its stem finds title/artist/year in export.PAINTINGS; its sha256 is recorded
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    licence: str | None = None

    def record(self) -> dict[str, str]:
        """What a checkpoint keeps of the style (the card's ``styles`` entry is made from it at export)."""
        pixels = sha256_bytes(np.ascontiguousarray(self.image).tobytes())
        rec = {
            "name": self.name,
            "style_file": self.file.stem if self.file is not None else "",
            "style_sha256": sha256_file(self.file)
            if self.file is not None and self.file.is_file()
            else pixels,
            "style_pixels_sha256": pixels,
        }
        for key in ("title", "artist", "year", "licence"):
            if getattr(self, key):
                rec[key] = str(getattr(self, key))
        return rec


def check_style_names(names: list[str]) -> None:
    """Style names are served as model-like names: lower-case, distinct, at least one."""
    if not names:
        raise InvalidArgument("A multi-style net needs at least one --style NAME=PAINTING.")
    bad = [n for n in names if not STYLE_NAME.match(n)]
    if bad:
        raise InvalidArgument(
            f"Style names must be lower-case letters, digits, '_' or '-' (up to 64), got {', '.join(bad)}."
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidArgument(f"Style names must be distinct: {', '.join(dupes)} given twice.")


def style_for_step(seed: int, step: int, styles: int, order: str = "round_robin") -> int:
    """The style trained at step ``step``: from (seed, step) alone, so a resume trains the same ones."""
    if order == "round_robin":
        return step % styles
    if order == "random":
        rng = np.random.default_rng([seed, step, 2])  # apart from the crops' [seed, step], the roll's [.., 1]
        return int(rng.integers(styles))
    raise InvalidArgument(f"--order must be one of {', '.join(ORDERS)}, got {order!r}.")


def init_multi(net: MultiStyleNet, path: str | Path) -> None:
    """Start ``net`` from a checkpoint or exported graph: a ``mobile2`` (every style's rows at its values)
    or a ``mobile2_multi`` of the same style count."""
    init = load_init(path)
    if init["arch"] == BASE_ARCH:
        net.load_single(init["model"])
    elif init["arch"] == MULTI_ARCH:
        rows = int(init["model"]["encoder.1.gamma"].shape[0])
        if rows != net.styles:
            raise InvalidArgument(f"--init {path} has {rows} styles, this run {net.styles}.")
        net.load_state_dict(init["model"])
    else:
        raise InvalidArgument(f"--init {path} is a {init['arch']} net; a multi net starts from {BASE_ARCH}.")


def train_multi(
    config: TrainConfig,
    styles: list[StyleSource],
    data_dir: str | Path,
    out_dir: str | Path,
    name: str,
    backbone: Backbone,
    resume: bool = False,
    init_from: str | Path | None = None,
    order: str = "round_robin",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train a ``mobile2_multi`` net on ``styles`` with crops of the photos in ``data_dir``.

    Writes ``<out_dir>/<name>.ckpt`` (arch ``mobile2_multi``, with a ``styles`` list of the paintings'
    records in style-vector order) every ``checkpoint_every`` steps and at the end, and the loss curve.
    ``resume`` continues that checkpoint (the same style names, in order); ``init_from`` starts from a
    ``mobile2`` or same-sized multi checkpoint / ``.onnx``. ``config.arch`` and ``identity`` do not apply.
    """
    config.validate()
    if config.distill:  # its cache is one painting's, and these loops train norm rows of many
        raise InvalidArgument("--distill trains a single-style net; a multi-style net does not take it.")
    if config.identity:
        raise InvalidArgument("--identity trains a single-style warm start; use `atelier train --identity`.")
    check_style_names([s.name for s in styles])
    style_for_step(config.seed, 0, len(styles), order)  # validates the order
    device = torch.device(config.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / f"{name}.ckpt"
    files = list_photos(data_dir)
    sampler = CropSampler(files, config.size, config.seed)
    records = [s.record() for s in styles]

    torch.manual_seed(config.seed)
    net = MultiStyleNet(len(styles)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    start, history, cpu_before = 0, [], 0.0
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        saved = [str(s["name"]) for s in ckpt.get("styles", [])]
        if ckpt["arch"] != MULTI_ARCH or saved != [s.name for s in styles]:
            raise InvalidArgument(
                f"Checkpoint {ckpt_path} is a {ckpt['arch']} net of styles {saved}, not this run's."
            )
        net.load_state_dict(training_weights(ckpt))
        resume_optimizer(optimizer, ckpt["optimizer"], config.lr)
        start, history = int(ckpt["step"]), list(ckpt["history"])
        cpu_before = float(ckpt.get("cpu_seconds", 0.0))
        set_rng_state(ckpt["rng"], device)
    elif init_from is not None:
        init_multi(net, init_from)
    average = resume_average(ckpt if resume else {}, net, config.ema)
    config_dict: dict[str, Any] = {**asdict(config), "arch": MULTI_ARCH, "order": order}

    def fields(step: int) -> dict[str, Any]:
        return {
            "arch": MULTI_ARCH,
            **model_fields(net, average),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(device),
            "config": config_dict,
            "styles": records,
            "name": name,
            "photos": len(files),
        }

    book = StepBook(
        config,
        ckpt_path=ckpt_path,
        start=start,
        keys=MULTI_KEYS,
        history=history,
        fields=fields,
        after_save=lambda: write_loss_curve(history, out / f"{name}.loss.csv", out / f"{name}.loss.png"),
        cpu_before=cpu_before,
        progress=progress,
    )
    losses = [recipe_loss(config, backbone, s.image, device) for s in styles]
    use_amp = device.type == "cuda"

    book.begin()
    net.train()
    for step in range(start, config.steps):
        if cancel is not None:
            cancel.check()
        k = style_for_step(config.seed, step, len(styles), order)
        content = sampler.batch(step, config.batch).to(device, non_blocking=True)
        w = one_hot(k, len(styles), config.batch).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            terms = step_terms(config, losses[k], net(content, w), content, step)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if average is not None:
            average.update(net)
        terms["style_index"] = torch.tensor(float(k))
        if book.record(step, terms):
            break
    last, final, seconds = book.finish()
    final.pop("style_index", None)
    return TrainResult(ckpt_path, last, final, history, seconds)
