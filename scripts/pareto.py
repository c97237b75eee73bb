#!/usr/bin/env python
"""Style ratio to Gatys against structure for every fast net trained and scored (the Pareto front).

Reads every ``score.json`` that scripts/score_ablation.py wrote under runs/ablation, runs/recipe, the staged
runs of scripts/recipe_long.py and runs/probe (the ablation's lever runs, the recipe's retrained styles,
the stages, the distillation runs and their baseline, one-off continuations of a stage, and the shipped nets scored as ``shipped.*``). For each
run: the median over the photos of its style distance divided by that (painting, photo) pair's Gatys
reference (docs/bench/gatys_reference.json), and the median structure. Upper-left is better: the style of
Gatys and the photo's layout. A run is on the front when no other run of the same painting has both a lower
style ratio and a higher structure.

    .venv/bin/python scripts/pareto.py --out docs/images/pareto.png --table docs/training/pareto.md \
        --earlier docs/training/pareto.md

runs/ goes with the machine; ``--earlier`` keeps the rows of an earlier table whose runs are not under
runs/ any more (a run scored again replaces its row).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe import MOBILE, ROOT

PAINTINGS = {name: entry[0].rsplit(".", 1)[0] for name, entry in MOBILE.items()}
STRUCTURE_BAR, RATIO_BAR = 0.75, 2.0
# Staged run folders -> the run-name tag of their stages (long_lap_mobile2w: the wider net, same recipe).
STAGED = {
    "long": "long",
    "long_lap": "lap",
    "long_lap_mobile2w": "lapw",
    "long_anneal": "ann",
    "long_anneal_mobile2w": "annw",
    "distill": "distill",  # distilled toward Gatys renders (atelier train --distill)
    "distill_base": "base",  # the same run and warm start without the teacher
    "long_aa": "aa",  # the anti-aliased loss network (atelier train --antialias)
    "long_aadeep": "aadeep",  # the same, the stem left plain (--antialias deep)
    "long_base": "aabase",  # their baseline: the same stages, seed and warm start, on the same machine
    "long_margin1": "margin",  # from that baseline's 2400 s: the grid penalty's margin 1.0, not 0.5
    "long_size384": "bigcrop",  # from it too: 384 px crops, batch 2 (the evaluation's scale)
    "long_scale": "scale",  # RECIPE=scale: the recipe with 384 px crops from 2400 s on
    "long_scale_johnson": "scalej",  # the same stages, ARCH=johnson (instance norm everywhere)
    "long_scale_johnson2": "scalejb",  # ARCH=johnson2 (instance norm in the encoder only)
}


@dataclass
class Point:
    run: str
    family: str  # "shipped", "ablation", "recipe" or "long" (scripts/recipe_long.py)
    style_key: str
    ratio: float
    structure: float
    grid: float
    droplets: float
    cpu_s: float = 0.0  # the run's CPU seconds of training, all resumes


def style_key(run: str) -> str:
    base = run.removeprefix("shipped.").split(".")[0]
    return base.removesuffix("-johnson")


def points(folders: list[Path], gatys: dict[str, dict[str, Any]]) -> list[Point]:
    out = []
    # A lever run started from another run's stage carries that stage's score: count it once.
    seen: set[tuple[str, int, float]] = set()
    for folder in folders:
        # runs/long and runs/long_lap (scripts/recipe_long.py) keep one score per CPU-budget stage:
        # <style>/stage_<s>/score.json -> "<style>.long<s>" / "<style>.lap<s>"
        staged = folder.name in STAGED
        paths = folder.glob("*/stage_*/score.json") if staged else folder.glob("*/score.json")
        for path in sorted(paths):
            score = json.loads(path.read_text(encoding="utf-8"))
            run = path.parent.name
            if staged:
                run = f"{path.parent.parent.name}.{STAGED[folder.name]}{run.removeprefix('stage_')}"
            key = style_key(run)
            painting = PAINTINGS.get(key)
            ref = gatys.get(painting or "", {})
            refs, fallback = ref.get("photos", {}), ref.get("median")  # the median where a pair has none
            ratios = [
                p["style"] / refs.get(p["photo"], fallback)
                for p in score["photos"]
                if refs.get(p["photo"], fallback)
            ]
            same = (key, int(score.get("steps", 0)), round(float(score.get("cpu_seconds", 0.0)), 1))
            if not ratios or (staged and same[1] and same in seen):
                continue
            seen.add(same)
            family = "shipped" if run.startswith("shipped.") else folder.name
            med = score["median"] if "median" in score else score["mean"]
            out.append(
                Point(
                    run,
                    family,
                    key,
                    float(np.median(ratios)),
                    float(med["structure"]),
                    float(med["grid_over_photo"]),
                    float(med["droplets"]),
                    float(score.get("cpu_seconds", 0.0)),
                )
            )
    return out


def earlier_points(table: Path) -> list[Point]:
    """The rows of a table this script wrote before (its CPU column, where it has one; the stages' seconds
    are in their names)."""
    out = []
    for line in table.read_text(encoding="utf-8").splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 7:
            continue
        run, family = cells[0], cells[1]
        cpu = float(cells[7]) if len(cells) > 7 and cells[7] not in ("", "-") else 0.0
        if not cpu and family in STAGED:
            cpu = stage_seconds(run)
        ratio, structure, grid, droplets = (float(c.rstrip("x")) for c in cells[2:6])
        out.append(Point(run, family, style_key(run), ratio, structure, grid, droplets, cpu))
    return out


def front(pts: list[Point]) -> set[str]:
    return {
        p.run
        for p in pts
        if not any(
            q.style_key == p.style_key
            and q.ratio <= p.ratio
            and q.structure >= p.structure
            and q is not p
            and (q.ratio < p.ratio or q.structure > p.structure)
            for q in pts
        )
    }


# Marker shape per set; the sets without one of their own share the spares, in STAGED's order.
MARKS = {"shipped": "s", "ablation": "o", "recipe": "*", "probe": "^"}
SPARE_MARKS = "DPXphv<>d8H1234+x|_"
FILLED = "os^*DPXphv<>d8H"


def markers(families: list[str]) -> dict[str, str]:
    out = dict(MARKS)
    spare = iter(SPARE_MARKS)
    for family in [*STAGED, *families]:
        if family not in out:
            out[family] = next(spare, ".")
    return out


def plot(pts: list[Point], path: Path, labelled: set[str] | None = None) -> None:
    """Marker shape: the set; colour: the grid over the photos (the third bar, at most +0.5). Every point
    is drawn; only the ``labelled`` runs (the shipped nets and the front) are named, so the names stay
    readable where a hundred points crowd."""
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)
    families = list(dict.fromkeys(p.family for p in pts))
    scatter = None
    for family, marker in markers(families).items():
        sel = [p for p in pts if p.family == family]
        if not sel:
            continue
        scatter = ax.scatter(
            [p.ratio for p in sel],
            [p.structure for p in sel],
            c=[p.grid for p in sel],
            cmap="coolwarm",
            vmin=-0.5,
            vmax=2.5,
            marker=marker,
            s=90 if marker in "*s" else 36,
            label=family,
            # a line marker ("1", "+") is drawn in its colour and has no edge of its own
            **({"edgecolors": "black", "linewidths": 0.5} if marker in FILLED else {"linewidths": 1.0}),
        )
        for p in sel:
            if labelled is not None and p.run not in labelled:
                continue
            label = p.run.removeprefix("shipped.")
            ax.annotate(label, (p.ratio, p.structure), fontsize=6, xytext=(3, 2), textcoords="offset points")
    if scatter is not None:
        fig.colorbar(scatter, ax=ax, label="grid over the photos (bar: at most +0.5)")
    ax.axhline(STRUCTURE_BAR, color="grey", ls="--", lw=0.8)
    ax.axvline(RATIO_BAR, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("style distance / Gatys reference (median over the photos; lower = more of the painting)")
    ax.set_ylabel("structure (edge correlation with the photo)")
    ax.set_title("Fast nets: the bar is the upper-left corner of the dashed lines, in blue")
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


# The staged sets the curve draws: family -> (legend name, line style).
CURVE_SETS: dict[str, tuple[str, Any]] = {
    "long": ("plain", "--"),
    "long_lap": ("laplacian", "-"),
    "long_lap_mobile2w": ("laplacian, mobile2w", ":"),
    "long_anneal": ("annealed", "-."),
    "long_anneal_mobile2w": ("annealed, mobile2w", (0, (1, 3))),
    "distill": ("distilled", (0, (5, 1))),
    "distill_base": ("distillation's baseline", (0, (3, 1, 1, 1))),
    "long_scale": ("scale", "-"),
    "long_scale_johnson2": ("scale, johnson2", "--"),
}


def curve(pts: list[Point], path: Path) -> None:
    """The staged long runs: style ratio and structure against cumulative CPU seconds, one line per style."""
    long = [p for p in pts if p.family in STAGED]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 6.2), dpi=110)
    for ax in (left, right):  # up to 20 lines: tab10's colours would repeat
        ax.set_prop_cycle(color=list(plt.get_cmap("tab20").colors))  # type: ignore[attr-defined]
    for key in sorted({p.style_key for p in long}):
        for family, (name, style) in CURVE_SETS.items():
            sel = [p for p in long if p.style_key == key and p.family == family]
            sel.sort(key=lambda p: stage_seconds(p.run))
            secs = [stage_seconds(p.run) for p in sel]
            label = f"{key} ({name})"
            if sel:
                left.plot(secs, [p.ratio for p in sel], ls=style, marker="o", label=label)
                right.plot(secs, [p.structure for p in sel], ls=style, marker="o", label=label)
    for q in pts:  # one-off continuations of a stage (runs/probe): a point each, named
        if q.family == "probe" and q.cpu_s:
            for ax, value in ((left, q.ratio), (right, q.structure)):
                ax.scatter([q.cpu_s], [value], marker="^", color="black", zorder=3)
                ax.annotate(
                    q.run.split(".", 1)[1],
                    (q.cpu_s, value),
                    fontsize=7,
                    xytext=(4, 2),
                    textcoords="offset points",
                )
    left.axhline(RATIO_BAR, color="grey", ls="--", lw=0.8)
    right.axhline(STRUCTURE_BAR, color="grey", ls="--", lw=0.8)
    left.set_yscale("log")
    ticks = FuncFormatter(lambda v, _: f"{v:g}x")
    left.yaxis.set_major_formatter(ticks)
    left.yaxis.set_minor_formatter(ticks)
    left.set_ylabel("style ratio to Gatys (bar: at most 2.0x)")
    right.set_ylabel("structure (bar: at least 0.75)")
    for ax in (left, right):
        ax.set_xlabel("CPU seconds of training (one thread, all resumes)")
    # One legend under both panels (the same lines in each): inside, it hid the curves.
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(
        "scripts/recipe_long.py stages (lines; scale: 384 px crops from 2400 s) and one-off continuations"
        " of a stage (triangles)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def stage_seconds(run: str) -> float:
    return float(re.sub(r"^[a-z_]+", "", run.rsplit(".", 1)[1]))  # "lap4800", "distill2400" -> the seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--runs",
        nargs="*",
        type=Path,
        default=[ROOT / "runs" / d for d in ("ablation", "recipe", *STAGED, "probe")],
    )
    p.add_argument("--gatys-ref", type=Path, default=ROOT / "docs" / "bench" / "gatys_reference.json")
    p.add_argument("--out", type=Path, default=None, help="the plot (.png)")
    p.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    p.add_argument(
        "--earlier", type=Path, default=None, help="keep this table's rows for runs not under runs/"
    )
    p.add_argument("--curve", type=Path, default=None, help="the long runs' stages against CPU time (.png)")
    args = p.parse_args(argv)
    pts = points(args.runs, json.loads(args.gatys_ref.read_text(encoding="utf-8")))
    # A shipped net scored in both folders appears once (the first folder's score).
    pts = list({q.run: q for q in reversed(pts)}.values())[::-1]
    if args.earlier and args.earlier.is_file():  # a run scored again replaces its earlier row
        now = {q.run for q in pts}
        pts = [q for q in earlier_points(args.earlier) if q.run not in now] + pts
    best = front(pts)
    lines = [
        "| run | set | style ratio to Gatys | structure | grid over photo | droplets ‰ | on the front | CPU s |",
        "|---|---|---:|---:|---:|---:|:---:|---:|",
    ]
    for q in sorted(pts, key=lambda q: (q.style_key, q.family, q.ratio)):
        lines.append(
            f"| {q.run} | {q.family} | {q.ratio:.2f}x | {q.structure:.2f} | {q.grid:+.2f} | {q.droplets:.1f} | "
            f"{'yes' if q.run in best else ''} | {f'{q.cpu_s:.0f}' if q.cpu_s else '-'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.table:
        args.table.write_text(text, encoding="utf-8")
    if args.out:
        plot(pts, args.out, best | {q.run for q in pts if q.family == "shipped"})
    if args.curve:
        curve(pts, args.curve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
