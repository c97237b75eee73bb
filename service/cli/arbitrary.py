"""``atelier train-decoder`` and ``atelier export-decoder``: the WCT decoders of arbitrary style transfer
(service/core/arbitrary, docs/arbitrary_style.md).

* ``train-decoder --tap T --data PHOTOS --cpu-budget S --out DIR`` trains the decoder of one Lite0 tap to
  reconstruct photos (no paintings), with the checkpoint conventions of ``atelier train``:
  ``DIR/wct.<tap>.ckpt`` every ``--checkpoint-every`` steps and at the end, ``--resume``, a CPU budget
  counted across resumes, a tqdm bar.
* ``export-decoder CKPT --out models/`` exports that decoder and the encoder up to its tap to ONNX, checks
  both against PyTorch at odd sizes and registers them in the models folder's manifest with model cards.

Like ``atelier train``, only torch, numpy, PIL and tqdm are needed (no server packages).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from service.cli.common import add_backbone_arg, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    from service.core.arbitrary.levels import TAPS

    t = sub.add_parser(
        "train-decoder", help="train a WCT decoder (arbitrary style) to invert one backbone tap, on photos"
    )
    t.add_argument("--tap", required=True, choices=TAPS, help="the Lite0 tap whose features it decodes")
    t.add_argument("--data", required=True, type=Path, help="folder of training photos (no paintings)")
    t.add_argument("--out", type=Path, default=Path("runs/wct"), help="checkpoint folder (default runs/wct)")
    t.add_argument("--steps", type=int, default=20_000, help="optimiser steps (default 20000)")
    t.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    t.add_argument("--size", type=int, default=256, help="crop side in px, a multiple of 16 (default 256)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--pixel-weight", type=float, default=10.0, help="pixel MSE weight (default 10)")
    t.add_argument(
        "--feature-weight", type=float, default=1.0, help="normalised feature MSE weight (default 1)"
    )
    t.add_argument("--grid-weight", type=float, default=0.0, help="crosshatch penalty (default 0, off)")
    t.add_argument(
        "--shift-jitter",
        type=int,
        default=-1,
        help="roll both images by 0..N-1 px before the feature loss (-1: the tap's stride; 0: off)",
    )
    t.add_argument("--width-scale", type=float, default=1.0, help="decoder widths times this (default 1)")
    t.add_argument(
        "--stylised-weight",
        type=float,
        default=0.0,
        help="weight of the cycle term on painting-coloured features (default 0, off; needs --paintings)",
    )
    t.add_argument(
        "--paintings", type=Path, help="training-side paintings for --stylised-weight (never the 7 held out)"
    )
    t.add_argument(
        "--painting-size", type=int, default=128, help="paintings' longer side for their statistics (128)"
    )
    add_backbone_arg(t, default="efficientnet_lite0")
    t.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    t.add_argument("--seed", type=int, default=0, help="fixes the initial weights and every batch")
    t.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (500)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/wct.<tap>.ckpt")
    t.add_argument(
        "--cpu-budget",
        type=float,
        default=0.0,
        help="stop after this many seconds of process CPU time, resumes included (0: off)",
    )
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.set_defaults(func=run_train_decoder)

    e = sub.add_parser(
        "export-decoder", help="export a WCT decoder and its encoder to ONNX and register them"
    )
    e.add_argument("checkpoint", type=Path, help="a wct.<tap>.ckpt written by `atelier train-decoder`")
    e.add_argument("-o", "--out", type=Path, default=Path("models"), help="models folder (default models/)")
    e.add_argument("--version", default="1", help="model version (default 1)")
    e.add_argument("--note", default="", help="free text for the model card (machine, wall time)")
    e.set_defaults(func=run_export_decoder)


def run_train_decoder(args: argparse.Namespace) -> int:
    import torch

    from service.core.arbitrary.train_decoder import DecoderConfig, train_decoder
    from service.core.backbones import get_backbone

    if args.threads:
        torch.set_num_threads(args.threads)
    config = DecoderConfig(
        tap=args.tap,
        steps=args.steps,
        batch=args.batch,
        size=args.size,
        lr=args.lr,
        pixel_weight=args.pixel_weight,
        feature_weight=args.feature_weight,
        grid_weight=args.grid_weight,
        shift_jitter=args.shift_jitter,
        width_scale=args.width_scale,
        stylised_weight=args.stylised_weight,
        painting_size=args.painting_size,
        backbone=args.backbone,
        device=args.device,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        cpu_budget_s=args.cpu_budget,
    )
    config.validate()  # fail on a bad flag before loading anything
    backbone = get_backbone(config.backbone, config.device)
    with progress_bar(f"train-decoder {args.tap}", config.steps) as bar:
        result = train_decoder(
            config,
            args.data,
            args.out,
            backbone,
            resume=args.resume,
            progress=bar,
            paintings_dir=args.paintings,
        )
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    print(f"{result.checkpoint}: step {result.step}, {losses} ({result.seconds:.0f} s)")
    return 0


def run_export_decoder(args: argparse.Namespace) -> int:
    from service.core.arbitrary.export import install_decoder
    from service.core.arbitrary.train_decoder import decoder_from_checkpoint, load_decoder_checkpoint
    from service.core.backbones import get_backbone

    ckpt = load_decoder_checkpoint(args.checkpoint)
    config = dict(ckpt.get("config", {}))
    backbone = get_backbone(str(config.get("backbone", "efficientnet_lite0")), "cpu")
    history = list(ckpt.get("history", []))[-50:]
    final = {k: round(sum(r[k] for r in history) / len(history), 5) for k in history[-1]} if history else {}
    final.pop("step", None)
    card = install_decoder(
        decoder_from_checkpoint(ckpt),
        backbone,
        str(ckpt["tap"]),
        args.out,
        version=args.version,
        training={**config, "photos": ckpt.get("photos"), "steps_done": ckpt.get("step"),
                  "cpu_seconds": ckpt.get("cpu_seconds")},
        final_losses=final,
        note=args.note,
    )  # fmt: skip
    parity = ", ".join(f"{k}: {v:.3g}" for k, v in dict(card["parity_max_abs"]).items())
    print(f"{args.out / str(card['file'])}: registered {card['name']} (parity max abs error {parity})")
    return 0
