#!/usr/bin/env python
"""Build the Gatys teacher renders that ``atelier train --distill`` pulls the net toward
(``service.core.stylize.distill``): random training crops, each rendered with 300 L-BFGS iterations at the
training crop size, the painting at the training style size. About 25 CPU s per 256 px crop on this 2-core
CPU (one thread); saved after every render, so a killed build resumes where it stopped.

    .venv/bin/python scripts/distill_cache.py --style-image ../shared/data/styles/van_gogh_starry_night.jpg \
        --out runs/distill/starry_night.cache.pt --count 64
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch
from tqdm import tqdm

from service.core.backbones import get_backbone
from service.core.imageio import load_image
from service.core.progress import Progress
from service.core.stylize.distill import build_cache

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style-image", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "photos")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--style-size", type=int, default=512)
    ap.add_argument("--gatys-steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="the training run's seed")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=args.count, desc=f"gatys crops -> {args.out.name}", unit="crop")

    def progress(p: Progress) -> None:
        bar.update(p.step - bar.n + (args.count - p.total))
        bar.set_postfix(cpu_s=f"{p.losses.get('cpu_s', 0.0):.0f}")

    cache = build_cache(
        get_backbone("efficientnet_lite0"),
        load_image(args.style_image),
        args.data,
        args.out,
        args.count,
        args.size,
        args.style_size,
        args.gatys_steps,
        args.seed,
        progress,
    )
    bar.close()
    print(f"{len(cache)} crops, {cache.cpu_seconds:.0f} CPU s of Gatys in all -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
