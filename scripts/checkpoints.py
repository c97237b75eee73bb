"""Keep long training runs across machines: copy their checkpoints and scores from runs/ (git-ignored, lost
with the machine) into checkpoints/ (tracked), and back.

checkpoints/ mirrors runs/: ``runs/long_anneal/night_cafe/night_cafe.ckpt`` is kept as
``checkpoints/long_anneal/night_cafe/night_cafe.ckpt``. A run's own checkpoint is kept whole (weights,
optimizer, RNG, history, CPU seconds), so ``--resume`` continues it exactly; a scored stage keeps its
``score.json`` (so does a run scored as a whole) and its weights without the optimizer state (enough to export and ship it, a third of
the size). ``restore`` copies back only what runs/ lacks, so it never overwrites a newer run;
``scripts/recipe_long.py`` restores before it starts.

    .venv/bin/python scripts/checkpoints.py keep runs/long_anneal/night_cafe runs/ablation/identity-mobile2
    .venv/bin/python scripts/checkpoints.py restore
    .venv/bin/python scripts/checkpoints.py list
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
KEPT = ROOT / "checkpoints"
# What a stage's copy drops: the optimizer's moments (twice the weights) and the loss history.
STAGE_DROPS = ("optimizer", "history", "rng")


def kept_path(path: Path) -> Path:
    return KEPT / path.resolve().relative_to(RUNS.resolve())


def keep_run(folder: Path) -> list[Path]:
    """Copy one run folder's checkpoint, and each scored stage's score and weights, into checkpoints/."""
    written: list[Path] = []
    for ckpt in sorted(folder.glob("*.ckpt")):
        dest = kept_path(ckpt)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ckpt, dest)
        written.append(dest)
    for score in sorted(folder.glob("score.json")):  # a one-off continuation's score (runs/probe)
        kept_path(score).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(score, kept_path(score))
        written.append(kept_path(score))
    for score in sorted(folder.glob("stage_*/score.json")):
        dest = kept_path(score)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(score, dest)
        written.append(dest)
        for ckpt in score.parent.glob("*.ckpt"):
            payload = torch.load(ckpt, map_location="cpu", weights_only=False)
            slim = {k: v for k, v in payload.items() if k not in STAGE_DROPS}
            torch.save(slim, kept_path(ckpt))
            written.append(kept_path(ckpt))
    return written


def restore() -> list[Path]:
    """Copy every kept file that runs/ lacks back into runs/."""
    written: list[Path] = []
    for kept in sorted(p for p in KEPT.rglob("*") if p.is_file() and p.name != "README.md"):
        dest = RUNS / kept.relative_to(KEPT)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kept, dest)
        written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    keep = sub.add_parser("keep", help="copy run folders under runs/ into checkpoints/")
    keep.add_argument("folders", nargs="+", type=Path)
    sub.add_parser("restore", help="copy what runs/ lacks back from checkpoints/")
    sub.add_parser("list", help="list the kept runs and their CPU seconds")
    args = parser.parse_args(argv)
    if args.command == "keep":
        for folder in args.folders:
            if not folder.is_dir() or RUNS.resolve() not in folder.resolve().parents:
                print(f"{folder}: not a run folder under {RUNS}", file=sys.stderr)
                return 2
            for path in keep_run(folder):
                print(f"kept {path.relative_to(ROOT)}")
    elif args.command == "restore":
        for path in restore():
            print(f"restored {path.relative_to(ROOT)}")
    else:
        for ckpt in sorted(KEPT.rglob("*.ckpt")):
            payload = torch.load(ckpt, map_location="cpu", weights_only=False)
            seconds = float(payload.get("cpu_seconds", 0.0))
            print(f"{ckpt.relative_to(KEPT)}: step {payload.get('step')}, {seconds:.0f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
