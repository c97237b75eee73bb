"""Timings of the multi-style net (docs/multi_style.md), one torch thread, short runs.

1. CPU seconds per training step of ``train_multi`` with 1 and with 8 styles, the recipe's settings
   (256 px crops, batch 4, painting at 512 px, roll 32, content weight 3, grid weight 3).
2. Adding a style for ``--budget`` CPU seconds (``add_style``) to a one-style multi net built from a
   trained ``mobile2`` checkpoint, then its export with the parity check; beside it, the single-style
   alternative at the same CPU cost: fine-tuning that ``mobile2`` net to the new painting. Both print the
   mean loss terms of their last 10 steps (the training loss, not the issue's image measures).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_multi_style.py \
        --base runs/ablation/starry_night.combo_grid3_long/starry_night.combo_grid3_long.ckpt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from service.core.backbones import get_backbone
from service.core.imageio import load_image
from service.core.stylize.add_style import add_style
from service.core.stylize.nets.multi import MULTI_ARCH, MultiStyleNet
from service.core.stylize.train import TrainConfig, load_checkpoint, train
from service.core.stylize.train_multi import StyleSource, train_multi

STYLES = Path("/work/shared/data/styles")
PAINTINGS = {
    "starry_night": "van_gogh_starry_night.jpg", "great_wave": "hokusai_great_wave.jpg",
    "the_scream": "munch_the_scream.jpg", "udnie": "picabia_udnie.jpg",
    "composition_vii": "kandinsky_composition_vii.jpg", "woman_with_a_hat": "matisse_woman_with_a_hat.jpg",
    "night_cafe": "van_gogh_the_night_cafe.jpg", "the_kiss": "klimt_the_kiss.png",
}  # fmt: skip


def recipe(**kw: object) -> TrainConfig:
    base: dict[str, object] = dict(batch=4, size=256, style_size=512, lr=1e-3, style_weight=8.0,
                                   content_weight=3.0, shift_jitter=32, grid_weight=3.0, checkpoint_every=0)  # fmt: skip
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def source(name: str) -> StyleSource:
    path = STYLES / PAINTINGS[name]
    return StyleSource(name, load_image(path), file=path)


def tail(
    history: list[dict[str, float]], keys: tuple[str, ...] = ("total", "style", "content", "grid")
) -> str:
    rows = history[-10:]
    return ", ".join(f"{k} {np.mean([r[k] for r in rows]):.3g}" for k in keys)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/photos"))
    p.add_argument("--base", type=Path, required=True, help="a trained mobile2 checkpoint (the first style)")
    p.add_argument("--base-style", default="starry_night")
    p.add_argument("--new-style", default="great_wave")
    p.add_argument("--steps", type=int, default=8, help="steps per style count in part 1")
    p.add_argument("--budget", type=float, default=60.0, help="CPU seconds of part 2's runs")
    p.add_argument("--out", type=Path, default=Path("runs/multi_bench"))
    p.add_argument("--skip-steps", action="store_true", help="only part 2")
    p.add_argument("--skip-single", action="store_true", help="no single-style fine-tune in part 2")
    p.add_argument("--add-lr", type=float, default=1e-3, help="add-style's learning rate (default 1e-3)")
    args = p.parse_args()
    torch.set_num_threads(1)
    backbone = get_backbone("efficientnet_lite0", "cpu")

    if not args.skip_steps:
        print("| styles | steps | CPU s per step |\n|---:|---:|---:|")
        for count in (1, 8):
            styles = [source(n) for n in list(PAINTINGS)[:count]]
            out = args.out / f"steps{count}"
            train_multi(recipe(steps=args.steps), styles, args.data, out, "m", backbone, init_from=args.base)
            ckpt = load_checkpoint(out / "m.ckpt")
            print(f"| {count} | {ckpt['step']} | {ckpt['cpu_seconds'] / ckpt['step']:.3f} |", flush=True)

    # Part 2: the base as a one-style multi net, then the new style's rows only.
    init = load_checkpoint(args.base)
    net = MultiStyleNet(1)
    net.load_single(init["model"])
    base_style = source(args.base_style)
    ckpt_path = args.out / "base.ckpt"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": MULTI_ARCH, "model": net.state_dict(), "styles": [base_style.record()],
                "config": dict(init.get("config", {})), "name": "multi", "history": [], "step": 0},
               ckpt_path)  # fmt: skip
    budget = recipe(steps=100_000, cpu_budget_s=args.budget, lr=args.add_lr)
    t0, c0 = time.monotonic(), time.process_time()
    added = add_style(budget, source(args.new_style), ckpt_path, args.data, args.out, backbone,
                      models_dir=args.out / "models")  # fmt: skip
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    assert added.card is not None
    parity = max(added.card["parity_max_abs_error"].values())
    print(f"\nadd-style {args.new_style}: {added.step} steps in {args.budget:.0f} CPU s of training; the whole "
          f"command (targets, training, export + parity at {', '.join(added.card['parity_max_abs_error'])}) "
          f"{cpu:.0f} CPU s, {wall:.0f} s wall; parity max {parity:.3g}")  # fmt: skip
    print(f"  lr {args.add_lr:g}, last 10 steps: {tail(added.history)}")
    if args.skip_single:
        return
    single = train(recipe(arch="mobile2", steps=100_000, cpu_budget_s=args.budget), source(args.new_style).image,
                   args.data, args.out / "single", args.new_style, backbone, init_from=args.base)  # fmt: skip
    print(f"single mobile2 fine-tune {args.new_style}: {single.step} steps in {args.budget:.0f} CPU s")
    print(f"  last 10 steps: {tail(single.history)}")


if __name__ == "__main__":
    main()
