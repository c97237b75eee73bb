"""``atelier train`` (fit a fast style network) and ``atelier export`` (checkpoint -> ONNX + model card).

``atelier train --add-style NAME --style-image IMG --into MODEL`` adds a style to a multi-style net and
``atelier train-multi`` trains one (``service.cli.train_multi``); both take the recipe flags of ``train``.

Only torch, numpy, PIL, tqdm and matplotlib are needed at run time (no server packages), so training runs
on a bare GPU machine with ``python -m service train ...``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.common import add_backbone_arg, progress_bar

if TYPE_CHECKING:
    from service.core.stylize.train import TrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a fast style-transfer network for one style image")
    t.add_argument("--style-image", type=Path, help="the painting to learn (not with --identity)")
    t.add_argument(
        "--data", required=True, type=Path, help="folder of training photos (searched recursively)"
    )
    t.add_argument("--name", help="style name, e.g. starry_night (files are <name>.ckpt ...)")
    t.add_argument(
        "--arch",
        choices=("mobile", "mobile2", "mobile2w", "johnson", "johnson2"),
        default="mobile",
        help="transform net (default mobile; mobile2: no grid or droplet sources, see docs/training)",
    )
    add_recipe_args(t)
    t.add_argument("--out", type=Path, default=Path("runs"), help="checkpoint folder (default runs/)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/<name>.ckpt")
    t.add_argument(
        "--init-from",
        "--init",
        dest="init_from",
        type=Path,
        help="start from another checkpoint's weights (e.g. an --identity warm start), or a shipped "
        "model's .onnx (fine-tune)",
    )
    t.add_argument(
        "--identity",
        action="store_true",
        help="warm start shared by all styles: train the net to reproduce the photos (pixel MSE + content "
        "loss, no style image); start style runs from its checkpoint with --init",
    )
    t.add_argument(
        "--pixel-weight", type=float, default=100.0, help="pixel MSE weight of --identity (default 100)"
    )
    t.add_argument(
        "--distill",
        type=Path,
        help="a cache of Gatys renders of training crops (scripts/distill_cache.py): pull the net toward "
        "the teacher's features on them",
    )
    t.add_argument(
        "--distill-weight", type=float, default=1.0, help="weight of the distance to the teacher (default 1)"
    )
    t.add_argument(
        "--distill-every",
        type=int,
        default=2,
        help="every N-th step trains on the cache's crops instead of fresh ones (default 2)",
    )
    from service.cli import train_multi

    train_multi.add_style_args(t)
    t.set_defaults(func=run_train)
    train_multi.register(sub)
    _register_export(sub)


def add_recipe_args(t: argparse.ArgumentParser) -> None:
    """The training recipe's flags, shared by ``train``, ``train --add-style`` and ``train-multi``."""
    t.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    t.add_argument("--batch", type=int, default=4, help="crops per step (default 4)")
    t.add_argument("--size", type=int, default=256, help="training crop side in px (default 256)")
    t.add_argument(
        "--style-size", type=int, default=384, help="style image's longer side in px (default 384)"
    )
    t.add_argument("--content-weight", type=float, default=1.0, help="default 1")
    t.add_argument("--style-weight", type=float, default=10.0, help="relative to content (default 10)")
    t.add_argument("--tv-weight", type=float, default=1e-4, help="total variation (default 1e-4)")
    t.add_argument(
        "--no-clip-output",
        dest="clip_output",
        action="store_false",
        help="let the loss see the raw output instead of the output clipped to 0..255 as served "
        "(how the first shipped nets were trained; it trains on values the served image never has)",
    )
    t.add_argument(
        "--range-weight", type=float, default=1.0, help="penalty on output outside 0..255 (default 1)"
    )
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    add_backbone_arg(t, default="efficientnet_lite0")
    t.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    t.add_argument("--seed", type=int, default=0, help="fixes the initial weights and every batch")
    t.add_argument(
        "--checkpoint-every", type=int, default=500, help="steps between checkpoints (default 500)"
    )
    t.add_argument(
        "--grid-weight",
        type=float,
        default=0.0,
        help="penalty on periodic 2/4/8 px patterns in the output (the crosshatch; default 0, off)",
    )
    t.add_argument(
        "--grid-margin",
        type=float,
        default=0.5,
        help="log10 spike over its ring that the grid penalty lets pass (default 0.5)",
    )
    t.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="export a moving average of the weights with this decay, e.g. 0.998 (Polyak 1992; train "
        "and train-multi; default 0, the last step's weights)",
    )
    t.add_argument(
        "--laplacian-weight",
        type=float,
        default=0.0,
        help="keep the photo's edges: Laplacian of the 4x-pooled render vs the photo (Li et al. 2017; "
        "default 0, off)",
    )
    t.add_argument(
        "--shift-jitter",
        type=int,
        default=0,
        help="roll output and content by the same random 0..N-1 px before the loss (32: the backbone's "
        "stride; default 0, off)",
    )
    t.add_argument(
        "--swag", action="store_true", help="softmax-smooth the deep taps before the loss (SWAG, off)"
    )
    t.add_argument(
        "--batch-gram",
        action="store_true",
        help="match the painting with one Gram of the whole batch, not one per crop (off)",
    )
    t.add_argument(
        "--antialias",
        nargs="?",
        const="all",
        default="",
        choices=("all", "deep"),  # antialias.ANTIALIAS_MODES; not imported here, it would load torch
        help="blur the loss network's activations before its stride-2 subsampling (Zhang 2019): all of "
        "them, or 'deep': all but the stem's (off)",
    )
    t.add_argument(
        "--cpu-budget",
        type=float,
        default=0.0,
        help="stop after this many seconds of process CPU time, resumes included (0: off)",
    )
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def _register_export(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a training checkpoint to ONNX with a model card")
    e.add_argument("checkpoint", type=Path, help="a .ckpt written by `atelier train` or `train-multi`")
    e.add_argument(
        "--name",
        required=True,
        help="style name; the model is <name> (mobile, mobile2, a multi-style net) or <name>-johnson",
    )
    e.add_argument("-o", "--out", type=Path, default=Path("models"), help="models folder (default models/)")
    e.add_argument("--style-image", type=Path, help="the painting (its file name picks title/artist/year)")
    e.add_argument("--title", help="painting title (default: from the built-in table)")
    e.add_argument("--artist", help="artist (default: from the built-in table)")
    e.add_argument("--year", help="year made (default: from the built-in table)")
    e.add_argument("--licence", help="licence of the painting (default: from the built-in table)")
    e.add_argument("--version", default="1", help="model version (default 1)")
    e.add_argument("--fp16", action="store_true", help="also write an fp16 variant for GPU providers")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--note", help="free text for the model card (e.g. training machine and time)")
    e.set_defaults(func=run_export)


def recipe_config(args: argparse.Namespace, arch: str) -> TrainConfig:
    """The ``TrainConfig`` of the recipe flags (``add_recipe_args``), validated; sets --threads."""
    import torch

    from service.core.stylize.train import TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        arch=arch,
        steps=args.steps,
        batch=args.batch,
        size=args.size,
        style_size=args.style_size,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        clip_output=args.clip_output,
        range_weight=args.range_weight,
        lr=args.lr,
        backbone=args.backbone,
        device=args.device,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        shift_jitter=args.shift_jitter,
        grid_weight=args.grid_weight,
        grid_margin=args.grid_margin,
        laplacian_weight=args.laplacian_weight,
        ema=args.ema,
        swag=args.swag,
        batch_gram=args.batch_gram,
        antialias=args.antialias,
        identity=getattr(args, "identity", False),
        pixel_weight=getattr(args, "pixel_weight", 100.0),
        cpu_budget_s=args.cpu_budget,
        distill=str(getattr(args, "distill", None) or ""),
        distill_weight=getattr(args, "distill_weight", 1.0),
        distill_every=getattr(args, "distill_every", 2),
    )
    config.validate()  # fail on a bad flag before loading anything
    return config


def run_train(args: argparse.Namespace) -> int:
    from service.core.backbones import get_backbone
    from service.core.errors import InvalidArgument
    from service.core.imageio import load_image
    from service.core.stylize.train import train

    if args.add_style:
        from service.cli.train_multi import run_add_style

        return run_add_style(args)
    if not args.name:
        raise InvalidArgument("Pass --name (the style's name), or --add-style NAME with --into.")
    config = recipe_config(args, args.arch)
    if (args.style_image is None) != args.identity:
        raise InvalidArgument("Pass --style-image for a style run, or --identity (and no style image).")
    style = None if args.identity else load_image(args.style_image)
    backbone = get_backbone(config.backbone, config.device)
    with progress_bar(f"train {args.name} ({config.arch})", config.steps) as bar:
        result = train(
            config,
            style,
            args.data,
            args.out,
            args.name,
            backbone,
            resume=args.resume,
            init_from=args.init_from,
            progress=bar,
        )
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    rate = (result.step - (result.history[0]["step"] - 1 if result.history else 0)) / max(
        result.seconds, 1e-9
    )
    print(f"{result.checkpoint}: step {result.step}, {losses} ({result.seconds:.0f} s, {rate:.2f} it/s)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from service.core.stylize.export import ExportOptions, export_checkpoint

    options = ExportOptions(
        name=args.name,
        version=args.version,
        opset=args.opset,
        fp16=args.fp16,
        style_image=args.style_image,
        title=args.title,
        artist=args.artist,
        year=args.year,
        licence=args.licence,
        note=args.note,
    )
    card = export_checkpoint(args.checkpoint, args.out, options)
    parity = ", ".join(f"{k}: {v:.3g}" for k, v in dict(card["parity_max_abs_error"]).items())
    print(f"{args.out / str(card['file'])}: {card['size_bytes']} bytes, parity max abs error {parity}")
    return 0
