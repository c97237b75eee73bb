"""Retrain the shipped fast styles with the levers the ablation kept (docs/training/ablation.md).

Every style is a fine-tune of a shipped net (its weights read from the ONNX graph): its own for the six
shipped paintings, the nearest painting's for the two new ones. The levers: output and content rolled by the
same random offset before the loss (``--shift-jitter 32``), content weight 3 and the grid penalty
(``--grid-weight 10``, ``grid_loss``). At the ablation's 420 CPU s per style, training from an identity warm start (the
ablation's ``combo_grid``) kept the photo and removed the grid but reached only a fifth of the shipped nets'
style; a fine-tune keeps the style the shipped net already has and repairs the picture.

Resumable like scripts/ablation.py (whose run loop it shares): runs live in runs/recipe/<run>/ (git-ignored),
a ``done`` marker skips a run, a checkpoint resumes it, ``score.json`` holds its measures. Shipped models are
scored as ``shipped.<model>`` for the comparison. ``--only`` limits the runs (e.g. one process per half).

    nohup .venv/bin/python scripts/recipe.py --only starry_night great_wave > runs/recipe/log.txt 2>&1 &
    .venv/bin/python scripts/recipe.py --table
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation import DATA, RECIPE, ROOT, run_one, runner_cli

OUT = ROOT / "runs" / "recipe"
MOBILE_BUDGET_S = float(os.environ.get("MOBILE_BUDGET_S", "420"))  # CPU seconds per mobile fine-tune
JOHNSON_BUDGET_S = float(os.environ.get("JOHNSON_BUDGET_S", "420"))  # per johnson fine-tune

# mobile model -> (painting, the shipped graph it is fine-tuned from, learning rate). The six shipped
# paintings start from their own net; the two new ones (outside the seven that the arbitrary-style
# evaluation keeps apart) from the shipped net of the nearest painting, at a higher rate to move the style.
# starry_night.mobile.onnx (version 3) left models/ when version 4 (mobile2) replaced it; its two rows need
# it back (git show e343743:models/starry_night.mobile.onnx > models/starry_night.mobile.onnx); so did
# woman_with_a_hat.mobile.onnx (version 4) for version 5 (git show 7972b60:models/woman_with_a_hat.mobile.onnx).
# composition_vii.mobile.onnx (version 4) with version 5 (git show 54c828c:models/composition_vii.mobile.onnx).
MOBILE: dict[str, tuple[str, str, str]] = {
    "night_cafe": ("van_gogh_the_night_cafe.jpg", "starry_night.mobile.onnx", "5e-4"),
    "cherry_tree": ("sakai_hoitsu_cherry_tree_screen.jpg", "great_wave.mobile.onnx", "5e-4"),
    "starry_night": ("van_gogh_starry_night.jpg", "starry_night.mobile.onnx", "3e-4"),
    "great_wave": ("hokusai_great_wave.jpg", "great_wave.mobile.onnx", "3e-4"),
    "the_scream": ("munch_the_scream.jpg", "the_scream.mobile.onnx", "3e-4"),
    "udnie": ("picabia_udnie.jpg", "udnie.mobile.onnx", "3e-4"),
    "composition_vii": ("kandinsky_composition_vii.jpg", "composition_vii.mobile.onnx", "3e-4"),
    "woman_with_a_hat": ("matisse_woman_with_a_hat.jpg", "woman_with_a_hat.mobile.onnx", "3e-4"),
}
# johnson model -> (painting, the shipped graph it is fine-tuned from). Since phase 21 the shipped
# johnson nets are johnson2 (instance norm in the encoder only, docs/training/long_runs.md).
JOHNSON = {
    "starry_night": ("van_gogh_starry_night.jpg", "starry_night.johnson2.onnx"),
    "great_wave": ("hokusai_great_wave.jpg", "great_wave.johnson2.onnx"),
    "udnie": ("picabia_udnie.jpg", "udnie.johnson2.onnx"),
}
# The levers the ablation kept: the roll, content weight 3 and the grid penalty.
LEVERS = [
    "--shift-jitter",
    "32",
    "--content-weight",
    "3",
    "--grid-weight",
    os.environ.get("GRID_WEIGHT", "10"),
]
# A variant of the recipe runs beside the first under its own names, e.g. GRID_WEIGHT=3 RUN_SUFFIX=.g3.
SUFFIX = os.environ.get("RUN_SUFFIX", "")


def plan() -> list[tuple[str, list[str], Path | None, Path | None]]:
    """(run, train arguments, painting, shipped ONNX it is compared with) in the order they run."""
    runs: list[tuple[str, list[str], Path | None, Path | None]] = []
    for name, (painting, init, lr) in MOBILE.items():
        args = [*RECIPE, "--arch", "mobile", *LEVERS, "--style-image", str(DATA / "styles" / painting)]
        args += ["--lr", lr, "--cpu-budget", str(MOBILE_BUDGET_S), "--init", str(ROOT / "models" / init)]
        shipped = ROOT / "models" / f"{name}.mobile.onnx"
        runs.append((name + SUFFIX, args, DATA / "styles" / painting, shipped if shipped.is_file() else None))
    for name, (painting, init) in JOHNSON.items():
        args = [*RECIPE, "--arch", "johnson2", *LEVERS, "--style-image", str(DATA / "styles" / painting)]
        # A fine-tune of a trained net: a fifth of the from-scratch learning rate (the last one wins).
        args += ["--lr", "2e-4", "--cpu-budget", str(JOHNSON_BUDGET_S), "--init", str(ROOT / "models" / init)]
        shipped = ROOT / "models" / f"{name}.johnson2.onnx"
        runs.append(
            (f"{name}-johnson", args, DATA / "styles" / painting, shipped if shipped.is_file() else None)
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    args, scorer, env = runner_cli(__doc__, argv)
    if args.table:
        return subprocess.call([*scorer, "--table", str(OUT)])
    for name, train_args, painting, shipped in plan():
        if args.only and name.removesuffix(SUFFIX) not in args.only:
            continue
        if shipped is not None and painting is not None and not args.dry_run:
            ref = OUT / f"shipped.{shipped.stem.replace('.mobile', '').replace('.johnson2', '-johnson')}"
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
