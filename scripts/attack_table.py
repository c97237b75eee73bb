#!/usr/bin/env python
"""Adversarial success on the content photos: FGSM and PGD (untargeted and targeted to 'iPod') at eps 1, 2
and 4 (0-255 units) on EfficientNet-Lite0 at 224 px; writes a Markdown table and an example picture.

    OMP_NUM_THREADS=1 python scripts/attack_table.py ../shared/data/content -o docs/bench/attacks_cpu.md \
        --example docs/images/adversarial_example.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from service.core.adversarial.common import AttackOptions, AttackResult
from service.core.adversarial.fgsm import fgsm
from service.core.adversarial.pgd import pgd
from service.core.adversarial.sheet import attack_sheet
from service.core.backbones import get_backbone
from service.core.imageio import load_image, save_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/bench/attacks_cpu.md"))
    ap.add_argument("--example", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    backbone = get_backbone("efficientnet_lite0")
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = [load_image(p) for p in files]
    rows = []
    example: tuple[AttackResult, float] | None = None
    for method, target in (("fgsm", None), ("pgd", None), ("fgsm", "iPod"), ("pgd", "iPod")):
        for eps in (1.0, 2.0, 4.0):
            attack = fgsm if method == "fgsm" else pgd
            results = []
            start = time.perf_counter()
            for image in images:
                results.append(
                    attack(backbone, image, AttackOptions(eps=eps, target=target, steps=args.steps))
                )
            seconds = time.perf_counter() - start
            wins = [r for r in results if r.success]
            mean_steps = f"{np.mean([r.steps for r in wins]):.1f}" if wins else "-"
            kind = "untargeted" if target is None else f"targeted ({target})"
            rows.append(
                (
                    method.upper(),
                    kind,
                    f"{eps:g}",
                    f"{len(wins)}/{len(results)}",
                    mean_steps,
                    str(max(r.linf for r in results)),
                    f"{seconds / len(results):.1f}",
                )
            )
            print(rows[-1], flush=True)
            if method == "pgd" and target == "iPod" and eps == 2.0 and wins:
                example = (wins[0], eps)
    lines = [
        "# Adversarial examples on the CPU",
        "",
        f"`python scripts/attack_table.py`: the {len(images)} photos of `shared/data/content`, EfficientNet-Lite0,",
        f"the classifier's 224 px centre crop, PGD at most {args.steps} steps of 2.5 eps / steps with a random start",
        "and early stop on the first step whose uint8 image succeeds. Success: untargeted, top-1 differs from the",
        "original's; targeted, top-1 is iPod. Mean steps over the successes. L-inf: the largest pixel change",
        "measured on the saved uint8 images. One thread, shared machine.",
        "",
        "| attack | goal | eps (0-255) | success | mean steps | max L-inf | s / image |",
        "|---|---|---|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in rows],
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    if args.example and example:
        save_image(attack_sheet(example[0], example[1], "PGD"), args.example)


if __name__ == "__main__":
    main()
