"""Ablation of the fast-style training levers, each alone against the current recipe and then together, at
equal CPU time, on two styles (docs/training/ablation.md).

Resumable: every run lives in runs/ablation/<run>/ (git-ignored). A run with a ``done`` marker is skipped;
a run with a checkpoint and no marker is resumed (``--resume``; the CPU budget counts across resumes); a
trained run without ``score.json`` is scored. One run at a time, one torch thread, so it can run in the
background on a shared 2-core machine:

    nohup .venv/bin/python scripts/ablation.py > runs/ablation/log.txt 2>&1 &

``--dry-run`` prints the commands; ``--only NAME...`` limits the runs; ``--table`` prints the scores so far.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "ablation"
DATA = Path(os.environ.get("ATELIER_DATA", "/work/shared/data"))
STYLES = {"starry_night": "van_gogh_starry_night.jpg", "great_wave": "hokusai_great_wave.jpg"}
STYLE_BUDGET_S = float(os.environ.get("STYLE_BUDGET_S", "420"))  # CPU seconds per style run
IDENTITY_BUDGET_S = float(os.environ.get("IDENTITY_BUDGET_S", "300"))  # per architecture, shared by styles

# The current recipe (scripts/train_defaults.sh phase 9, from scratch): 256 px crops, painting at 512 px,
# style weight 8, batch 4, Adam 1e-3, the output clipped as served.
RECIPE = ["--batch", "4", "--size", "256", "--style-size", "512", "--lr", "1e-3", "--style-weight", "8"]
# Each lever alone: the extra flags, and the identity warm start it starts from (None: from scratch).
LEVERS: dict[str, tuple[list[str], str | None]] = {
    "base": (["--arch", "mobile"], None),
    "combo": (
        ["--arch", "mobile2", "--shift-jitter", "32", "--swag", "--content-weight", "3"],
        "identity-mobile2",
    ),
    # Singles, in the order they run: the two levers that change the objective's balance first (the
    # combination kept the photo but barely took the style), then the rest.
    "swag": (["--arch", "mobile", "--swag"], None),
    "cw3": (["--arch", "mobile", "--content-weight", "3"], None),
    "arch": (["--arch", "mobile2"], None),
    "roll": (["--arch", "mobile", "--shift-jitter", "32"], None),
    "warm": (["--arch", "mobile"], "identity-mobile"),
    # The combination without SWAG: the lead's recipe (warm start, roll, resize-conv head, content weight 3).
    "combo_noswag": (
        ["--arch", "mobile2", "--shift-jitter", "32", "--content-weight", "3"],
        "identity-mobile2",
    ),
    # The crosshatch survived every lever above at period 2 px, so it comes from the loss: the penalty on
    # periodic 2/4/8 px patterns (grid_loss), on top of the combination without SWAG, and alone.
    "combo_grid": (
        ["--arch", "mobile2", "--shift-jitter", "32", "--content-weight", "3", "--grid-weight", "10"],
        "identity-mobile2",
    ),
    "grid": (["--arch", "mobile", "--grid-weight", "10"], None),
    # combo_grid took the grid below the photos' own and held the style back: a third of its weight.
    "combo_grid3": (
        ["--arch", "mobile2", "--shift-jitter", "32", "--content-weight", "3", "--grid-weight", "3"],
        "identity-mobile2",
    ),
    # Fine-tuning the shipped net of the same style (its weights read from the graph) instead of starting
    # from an identity: it keeps the style it has, and the levers only have to repair the picture.
    "tune_shipped": (
        [
            "--arch",
            "mobile",
            "--lr",
            "2e-4",
            "--shift-jitter",
            "32",
            "--content-weight",
            "3",
            "--grid-weight",
            "10",
        ],
        "{style}.mobile.onnx",
    ),
}
IDENTITIES = {"identity-mobile": "mobile", "identity-mobile2": "mobile2"}


def plan() -> list[tuple[str, list[str], str | None]]:
    """(run name, train arguments, style key or None) in the order they run: the base and the combination
    of both styles first, so the main comparison finishes first; each warm start just before its first user."""
    order = [(lever, style) for lever in ("base", "combo") for style in STYLES]
    order += [(lever, style) for style in STYLES for lever in LEVERS if lever not in ("base", "combo")]
    runs: list[tuple[str, list[str], str | None]] = []
    made: set[str] = set()
    for lever, style in order:
        flags, warm = LEVERS[lever]
        if warm is not None and warm.endswith(".onnx"):  # a shipped graph, not an identity run
            args = [*RECIPE, *flags, "--style-image", str(DATA / "styles" / STYLES[style])]
            args += [
                "--cpu-budget",
                str(STYLE_BUDGET_S),
                "--init",
                str(ROOT / "models" / warm.format(style=style)),
            ]
            runs.append((f"{style}.{lever}", args, style))
            continue
        if warm is not None and warm not in made:
            made.add(warm)
            args = [
                "--identity",
                "--arch",
                IDENTITIES[warm],
                *RECIPE[:6],
                "--cpu-budget",
                str(IDENTITY_BUDGET_S),
            ]
            runs.append((warm, args, None))
        args = [*RECIPE, *flags, "--style-image", str(DATA / "styles" / STYLES[style])]
        args += ["--cpu-budget", str(STYLE_BUDGET_S)]
        if warm is not None:
            args += ["--init", str(OUT / warm / f"{warm}.ckpt")]
        runs.append((f"{style}.{lever}", args, style))
    return runs


def train_command(out: Path, name: str, args: list[str]) -> list[str]:
    folder = out / name
    cmd = [sys.executable, "-m", "service", "train", "--name", name, "--data", str(DATA / "photos")]
    cmd += [*args, "--steps", "100000", "--checkpoint-every", "50", "--threads", "1", "--out", str(folder)]
    if (folder / f"{name}.ckpt").is_file():
        cmd.append("--resume")
    return cmd


def run_one(
    out: Path,
    name: str,
    train_args: list[str],
    painting: Path | None,
    scorer: list[str],
    env: dict[str, str],
    dry_run: bool,
) -> int:
    """Train run ``name`` unless it is done (resuming its checkpoint), then score it against ``painting``
    unless it is scored (an identity run, ``painting`` None, is not). Non-zero: stop, rerun to resume."""
    folder = out / name
    if not (folder / "done").is_file():
        cmd = train_command(out, name, train_args)
        print(f"[{time.strftime('%H:%M:%S')}] train {name}: {' '.join(cmd)}", flush=True)
        if dry_run:
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        if subprocess.call(cmd, cwd=ROOT, env=env) != 0:
            print(f"{name}: training failed; stopping (rerun to resume)", flush=True)
            return 1
        (folder / "done").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    if painting is not None and not (folder / "score.json").is_file() and not dry_run:
        print(f"[{time.strftime('%H:%M:%S')}] score {name}", flush=True)
        cmd = [*scorer, str(folder / f"{name}.ckpt"), "--style-image", str(painting)]
        cmd += ["--content", str(DATA / "content"), "--out", str(folder)]
        if subprocess.call(cmd, cwd=ROOT, env=env) != 0:
            print(f"{name}: scoring failed", flush=True)
            return 1
    return 0


def runner_cli(
    doc: str | None, argv: list[str] | None
) -> tuple[argparse.Namespace, list[str], dict[str, str]]:
    """The options, scorer command and one-thread environment shared by this script and scripts/recipe.py."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--only", nargs="*", help="run names to do (default all)")
    p.add_argument("--table", action="store_true", help="print the scores so far as markdown and exit")
    scorer = [sys.executable, str(ROOT / "scripts" / "score_ablation.py")]
    return p.parse_args(argv), scorer, {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def main(argv: list[str] | None = None) -> int:
    args, scorer, env = runner_cli(__doc__, argv)
    if args.table:
        return subprocess.call([*scorer, "--table", str(OUT)])
    for key, painting in STYLES.items():  # the shipped nets, as the reference rows
        ref = OUT / f"shipped.{key}"
        if not (ref / "score.json").is_file() and not args.dry_run and not args.only:
            ref.mkdir(parents=True, exist_ok=True)
            cmd = [*scorer, str(ROOT / "models" / f"{key}.mobile.onnx"), "--out", str(ref)]
            cmd += ["--style-image", str(DATA / "styles" / painting), "--content", str(DATA / "content")]
            subprocess.call(cmd, cwd=ROOT, env=env)
    for name, train_args, style in plan():
        if args.only and name not in args.only:
            continue
        style_file = None if style is None else DATA / "styles" / STYLES[style]
        if run_one(OUT, name, train_args, style_file, scorer, env, args.dry_run) != 0:
            return 1
    print(f"[{time.strftime('%H:%M:%S')}] all runs done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
