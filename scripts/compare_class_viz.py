#!/usr/bin/env python
"""Class visualisation with the two parametrisations side by side: prints the final logit and the pixel
standard deviation (how far the image got from flat grey) of each, and writes one image with both.

    python scripts/compare_class_viz.py goldfish --steps 250 -o docs/gallery/class_goldfish_compare.jpg
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.core.backbones import get_backbone  # noqa: E402
from service.core.imageio import save_image  # noqa: E402
from service.core.progress import Progress  # noqa: E402
from service.core.render.class_viz import PARAMETRIZATIONS, ClassVizOptions, class_visualization  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", help="ImageNet class index or label")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, default=None, help="side-by-side image (fourier | pixel)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    backbone = get_backbone("efficientnet_lite0", "cpu")
    images = []
    print(f"| parametrisation | logit after {args.steps} steps | pixel std (0-255) | seconds |")
    print("|---|---:|---:|---:|")
    for name in PARAMETRIZATIONS:
        scores: list[float] = []

        def progress(p: Progress, scores: list[float] = scores) -> None:
            scores.append(p.losses["score"])

        t0 = time.perf_counter()
        o = ClassVizOptions(size=args.size, steps=args.steps, parametrization=name)
        image = class_visualization(backbone, args.target, o, progress=progress)
        seconds = time.perf_counter() - t0
        images.append(image)
        print(f"| {name} | {scores[-1]:.1f} | {image.std():.1f} | {seconds:.0f} |")
    if args.output:
        save_image(np.concatenate(images, axis=1), args.output, quality=85)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
