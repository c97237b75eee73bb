"""Retrain the shipped fast styles with the recipe the ablation chose (docs/training/recipe.md).

The recipe (docs/training/ablation.md): `mobile2` (stride-2 convs down, bilinear x2 + conv up, instance norm
only in the encoder), started from one identity warm start shared by every style, the loss seeing output and
content rolled by the same random offset (``--shift-jitter 32``) and content weight 3. The johnson nets keep
their architecture and are fine-tuned from the shipped graphs with the roll and content weight 3.

Resumable like scripts/ablation.py (whose run loop it shares): runs live in runs/recipe/<run>/ (git-ignored),
a ``done`` marker skips a run, a checkpoint resumes it, ``score.json`` holds its measures. Shipped models are
scored as ``shipped.<model>`` for the comparison. ``--only`` limits the runs (e.g. one process per half).

    nohup .venv/bin/python scripts/recipe.py --only starry_night great_wave > runs/recipe/log.txt 2>&1 &
    .venv/bin/python scripts/recipe.py --table
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation import DATA, RECIPE, ROOT, run_one

OUT = ROOT / "runs" / "recipe"
MOBILE_BUDGET_S = float(os.environ.get("MOBILE_BUDGET_S", "720"))  # CPU seconds per mobile2 style
JOHNSON_BUDGET_S = float(os.environ.get("JOHNSON_BUDGET_S", "720"))  # per johnson fine-tune
IDENTITY_BUDGET_S = float(os.environ.get("IDENTITY_BUDGET_S", "300"))
# The ablation's warm start, reused when it exists (same recipe, same budget), else trained here.
IDENTITY = Path(
    os.environ.get("IDENTITY_CKPT", ROOT / "runs" / "ablation" / "identity-mobile2" / "identity-mobile2.ckpt")
)

# Model name -> painting. The six shipped paintings, and two more outside the seven that the arbitrary-style
# evaluation keeps apart.
MOBILE = {
    "starry_night": "van_gogh_starry_night.jpg",
    "great_wave": "hokusai_great_wave.jpg",
    "the_scream": "munch_the_scream.jpg",
    "udnie": "picabia_udnie.jpg",
    "composition_vii": "kandinsky_composition_vii.jpg",
    "woman_with_a_hat": "matisse_woman_with_a_hat.jpg",
    "night_cafe": "van_gogh_the_night_cafe.jpg",
    "cherry_tree": "sakai_hoitsu_cherry_tree_screen.jpg",
}
# johnson model -> (painting, the shipped graph it is fine-tuned from).
JOHNSON = {
    "starry_night": ("van_gogh_starry_night.jpg", "starry_night.johnson.onnx"),
    "great_wave": ("hokusai_great_wave.jpg", "great_wave.johnson.onnx"),
    "the_scream": ("munch_the_scream.jpg", "starry_night.johnson.onnx"),
}
LEVERS = ["--shift-jitter", "32", "--content-weight", "3"]


def identity_ckpt() -> Path:
    return IDENTITY if IDENTITY.is_file() else OUT / "identity-mobile2" / "identity-mobile2.ckpt"


def plan() -> list[tuple[str, list[str], Path | None, Path | None]]:
    """(run, train arguments, painting, shipped ONNX it is compared with) in the order they run."""
    runs: list[tuple[str, list[str], Path | None, Path | None]] = []
    if not IDENTITY.is_file():
        args = ["--identity", "--arch", "mobile2", *RECIPE[:6], "--cpu-budget", str(IDENTITY_BUDGET_S)]
        runs.append(("identity-mobile2", args, None, None))
    for name, painting in MOBILE.items():
        args = [*RECIPE, "--arch", "mobile2", *LEVERS, "--style-image", str(DATA / "styles" / painting)]
        args += ["--cpu-budget", str(MOBILE_BUDGET_S), "--init", str(identity_ckpt())]
        shipped = ROOT / "models" / f"{name}.mobile.onnx"
        runs.append((name, args, DATA / "styles" / painting, shipped if shipped.is_file() else None))
    for name, (painting, init) in JOHNSON.items():
        args = [*RECIPE, "--arch", "johnson", *LEVERS, "--style-image", str(DATA / "styles" / painting)]
        # A fine-tune of a trained net: a fifth of the from-scratch learning rate (the last one wins).
        args += ["--lr", "2e-4", "--cpu-budget", str(JOHNSON_BUDGET_S), "--init", str(ROOT / "models" / init)]
        shipped = ROOT / "models" / f"{name}.johnson.onnx"
        runs.append(
            (f"{name}-johnson", args, DATA / "styles" / painting, shipped if shipped.is_file() else None)
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--only", nargs="*", help="run names to do (default all)")
    p.add_argument("--table", action="store_true", help="print the scores so far as markdown and exit")
    args = p.parse_args(argv)
    scorer = [sys.executable, str(ROOT / "scripts" / "score_ablation.py")]
    if args.table:
        return subprocess.call([*scorer, "--table", str(OUT)])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name, train_args, painting, shipped in plan():
        if args.only and name not in args.only:
            continue
        if shipped is not None and painting is not None and not args.dry_run:
            ref = OUT / f"shipped.{shipped.stem.replace('.mobile', '').replace('.johnson', '-johnson')}"
            if not (ref / "score.json").is_file():
                ref.mkdir(parents=True, exist_ok=True)
                cmd = [*scorer, str(shipped), "--out", str(ref), "--style-image", str(painting)]
                subprocess.call([*cmd, "--content", str(DATA / "content")], cwd=ROOT, env=env)
        if run_one(OUT, name, train_args, painting, scorer, env, args.dry_run) != 0:
            return 1
    print(f"[{time.strftime('%H:%M:%S')}] all runs done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
