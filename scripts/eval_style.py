#!/usr/bin/env python
"""Quality of the fast style nets against Gatys optimisation (the table of docs/quality.md): style and
content distances, and the picture measures (structure, grid score over the photo's, droplets).

Imports only ``service.core`` (plus torch, numpy, PIL, onnxruntime, tqdm), so it runs on a GPU machine
without the server dependencies. The Gatys references are the slow part (seconds each on a GPU, minutes on
a CPU) and are cached under ``--cache-dir``: run it again after an interruption and it continues.

    python scripts/eval_style.py --device cuda --size 512 --gatys-steps 300 --out runs/eval_style.md
    python scripts/eval_style.py --device cpu --size 128 --gatys-steps 10 --max-photos 2   # smoke run
    python scripts/eval_style.py --device cuda --json runs/eval_style.json   # also every figure as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from service.core.imageio import save_image
from service.core.progress import Progress
from service.core.stylize.evaluate import (
    EvalOptions,
    contact_sheet,
    report_json,
    report_markdown,
    run_evaluation,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="torch device for backbone and Gatys"
    )
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--content-dir", type=Path, default=DATA / "content")
    p.add_argument("--styles-dir", type=Path, default=DATA / "styles")
    p.add_argument("--size", type=int, default=512, help="longer side of photos and results (default 512)")
    p.add_argument("--gatys-steps", type=int, default=300, help="L-BFGS iterations of the reference")
    p.add_argument("--max-photos", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument(
        "--models", nargs="*", default=(), help="model names (default: every model with a painting)"
    )
    p.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "eval_style_cache")
    p.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    p.add_argument("--sheet", type=Path, default=None, help="PNG: photo | fast | Gatys for the first photo")
    p.add_argument(
        "--json", type=Path, default=None, help="write the report as JSON here (per pair, per model)"
    )
    p.add_argument("--cpu-only-ort", action="store_true", help="run the fast nets on ORT's CPU provider")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    providers = (
        ("CPUExecutionProvider",) if args.cpu_only_ort else ("CUDAExecutionProvider", "CPUExecutionProvider")
    )
    options = EvalOptions(
        size=args.size,
        gatys_steps=args.gatys_steps,
        cache_dir=args.cache_dir,
        keep_images=1 if args.sheet else 0,
    )
    bar = tqdm(desc="eval-style", unit="pair", dynamic_ncols=True)

    def progress(p: Progress) -> None:
        bar.total = p.total
        bar.update(p.step - bar.n)
        bar.set_postfix_str(
            f"{p.stage} style x{p.losses['style_ratio']:.2f} content x{p.losses['content_ratio']:.2f} "
            f"structure {p.losses['structure']:.2f} grid {p.losses['grid_over_photo']:+.2f}"
        )

    try:
        report = run_evaluation(
            args.models_dir,
            args.content_dir,
            args.styles_dir,
            options,
            device=args.device,
            providers=providers,
            models=tuple(args.models),
            max_photos=args.max_photos,
            progress=progress,
        )
    finally:
        bar.close()
    gpu = f", {torch.cuda.get_device_name(0)}" if args.device == "cuda" else ""
    machine = f"{platform.processor() or platform.machine()}{gpu}, torch {torch.__version__}"
    table = report_markdown(report, machine)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {**report_json(report), "machine": machine}
        args.json.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.sheet:
        save_image(contact_sheet(report), args.sheet)
        print(f"wrote {args.sheet}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
