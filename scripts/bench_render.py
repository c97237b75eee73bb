#!/usr/bin/env python
"""Benchmarks of the slow renders; prints markdown tables (and writes them with --out).

1. Gatys time-to-quality at 512 px: the loss single-scale L-BFGS reaches in N iterations, and the time a
   coarse-to-fine schedule needs to reach that same loss. Both losses are the 512 px objective of
   ``service.core.render.gatys`` with the same targets (the last scale of a run builds the same ones);
   the multi-scale run is stopped through its cancel token as soon as it gets there.
2. Seconds per iteration and peak memory of Gatys (L-BFGS and Adam) and DeepDream at 256/512/1024 px.
   Each cell runs in a fresh process so the peak RSS delta (getrusage max RSS minus the RSS before the
   run) belongs to that cell alone; on CUDA the peak is torch.cuda.max_memory_allocated.

Imports only service.core, torch, numpy and PIL, so it runs on a bare GPU machine:
    python scripts/bench_render.py --device cuda --out docs/bench/render_gpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench_blur import blur_diagnosis  # noqa: E402  (scripts/, the folder of this script)
from _bench_util import SHARED, current_rss_mib, images, load_avg, peak_rss_mib  # noqa: E402

from service.core.backbones import get_backbone  # noqa: E402
from service.core.errors import Cancelled  # noqa: E402
from service.core.imageio import load_image, resize_max_side  # noqa: E402
from service.core.progress import CancelToken, Progress  # noqa: E402
from service.core.render.deepdream import DreamOptions, deepdream  # noqa: E402
from service.core.render.gatys import GatysOptions, gatys, gatys_loss  # noqa: E402


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    flags = f" ({torch.backends.cpu.get_cpu_capability()})"
    return f"{os.cpu_count()}-core CPU{flags}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


# ---------------------------------------------------------------------------------------------- cells
def cell(args: argparse.Namespace) -> dict[str, float]:
    """One (algorithm, size) measurement in this process; printed as JSON for the parent."""
    device = args.device
    backbone = get_backbone("efficientnet_lite0", device)
    content, style = images(args)
    marks: list[float] = []

    def progress(p: Progress) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        marks.append(time.perf_counter())

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = current_rss_mib()
    n = args.cell_steps
    if args.cell_algo.startswith("gatys"):
        optimizer = args.cell_algo.split("-")[1]
        o = GatysOptions(size=args.cell_size, steps=n, optimizer=optimizer)
        gatys(backbone, content, [style], o, progress=progress)
    else:
        o2 = DreamOptions(octaves=1, steps=n, size=args.cell_size)
        deepdream(backbone, content, o2, progress=progress)
    per_iter = (marks[-1] - marks[0]) / (len(marks) - 1)  # excludes the one-off target computation
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = peak_rss_mib() - before
    return {"s_per_iter": per_iter, "peak_mib": peak}


def run_cells(args: argparse.Namespace) -> str:
    rows = []
    for algo in args.algos:
        row = [algo]
        for size in args.sizes:
            steps = args.iters if size < 1024 else max(3, args.iters // 2)
            cmd = [
                sys.executable,
                __file__,
                "--cell-algo",
                algo,
                "--cell-size",
                str(size),
                "--cell-steps",
                str(steps),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
            ]
            if args.content:
                cmd += ["--content", args.content]
            if args.style:
                cmd += ["--style", args.style]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                row.append("failed")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            row.append(f"{r['s_per_iter']:.3f} s / {r['peak_mib']:.0f} MiB")
            print(f"  {algo} {size}px: {row[-1]}", file=sys.stderr)
        rows.append(row)
    mem = "peak CUDA memory allocated" if args.device.startswith("cuda") else "peak RSS delta"
    head = "| algorithm | " + " | ".join(f"{s} px" for s in args.sizes) + " |"
    sep = "|---" * (len(args.sizes) + 1) + "|"
    lines = [
        f"Seconds per iteration / {mem} (iterations: {args.iters}, {max(3, args.iters // 2)} at 1024 px)",
        "",
        head,
        sep,
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ time to quality
def time_to_quality(
    args: argparse.Namespace, content: np.ndarray, style: np.ndarray
) -> tuple[str, list[float | None]]:
    """The table for one content/style pair, and each schedule's speed-up (None: target not reached)."""
    device = args.device
    backbone = get_backbone("efficientnet_lite0", device)
    size = args.quality_size
    speedups: list[float | None] = []

    trace: list[tuple[int, float, float]] = []  # (step, 512 px loss, seconds) of the latest run
    # The weighted content and style terms where each run stopped: they show which term a coarse start
    # leaves behind at the full size.
    terms: list[dict[str, float]] = []

    def split(i: int) -> str:
        return f"{terms[i].get('content', float('nan')):.3g} / {terms[i].get('style', float('nan')):.3g}"

    def timed_run(o: GatysOptions, target: float | None) -> tuple[np.ndarray | None, float, float, int, str]:
        """(result, seconds to reach target or to finish, last 512 px loss, iterations, stage)."""
        token = CancelToken()
        trace.clear()
        state: dict[str, Any] = {"t": 0.0, "loss": float("inf"), "step": 0, "stage": "", "terms": {}}
        start = time.perf_counter()

        def progress(p: Progress) -> None:
            at_full = p.stage.endswith(f"({size} px)") or p.stage == f"{size} px"
            if at_full:
                state.update(
                    loss=p.losses["total"],
                    step=p.step,
                    stage=p.stage,
                    t=time.perf_counter() - start,
                    terms=dict(p.losses),
                )
                trace.append((p.step, p.losses["total"], time.perf_counter() - start))
                if target is not None and p.losses["total"] <= target:
                    token.cancel("target reached")

        try:
            out: np.ndarray | None = gatys(backbone, content, [style], o, progress=progress, cancel=token)
        except Cancelled:
            out = None
        terms.append(state["terms"])
        return out, float(state["t"]), float(state["loss"]), int(state["step"]), str(state["stage"])

    single = GatysOptions(size=size, steps=args.steps)
    out, t_single, loss_single, _, _ = timed_run(single, None)
    assert out is not None
    final_single = gatys_loss(backbone, out, content, [style], single)["total"]
    every = max(1, args.steps // 6)
    curve = ", ".join(f"{s}: {loss:.3g} ({t:.0f} s)" for s, loss, t in trace if s % every == 0 or s == 1)
    lines = [
        f"Gatys time-to-quality at {size} px (L-BFGS, Lite0 defaults): target = the loss single-scale reaches "
        f"in {args.steps} iterations",
        "",
        f"| schedule | iterations run | time (s) | {size} px loss | content / style | speed-up |",
        "|---|---|---|---|---|---|",
        f"| single-scale {size} | {args.steps} | {t_single:.1f} | {loss_single:.4g} "
        f"(uint8 result: {final_single:.4g}) | {split(0)} | 1.0x |",
    ]
    for scales, steps in args.schedules:
        o = GatysOptions(scales=scales, scale_steps=steps)
        _, t, loss, step, _ = timed_run(o, loss_single)
        reached = loss <= loss_single
        name = (
            "multi-scale "
            + "/".join(str(s) for s in scales)
            + " ("
            + "/".join(str(s) for s in steps)
            + " max)"
        )
        verdict = f"{t_single / t:.1f}x" if reached else "target not reached"
        speedups.append(t_single / t if reached else None)
        lines.append(f"| {name} | {step} | {t:.1f} | {loss:.4g} | {split(-1)} | {verdict} |")
        print(lines[-1], file=sys.stderr)
    lines += ["", f"Single-scale {size} px loss by iteration (seconds): {curve}."]
    return "\n".join(lines), speedups


def schedule_name(scales: tuple[int, ...], steps: tuple[int, ...]) -> str:
    return ",".join(f"{a}:{b}" for a, b in zip(scales, steps, strict=True))


def resolve_pair(text: str) -> tuple[str, Path, Path]:
    """'tubingen:van_gogh_starry_night' -> the files of that name under /work/shared/data."""
    c, st = text.split(":")
    content = next((SHARED / "content").glob(f"{c}.*"), None)
    style = next((SHARED / "styles").glob(f"{st}.*"), None)
    if content is None or style is None:
        sys.exit(f"--pairs {text}: no {SHARED}/content/{c}.* or no {SHARED}/styles/{st}.*")
    return f"{c} / {st}", content, style


def time_to_quality_pairs(args: argparse.Namespace) -> str:
    """time_to_quality for each pair, then one summary table of speed-ups with the median."""
    parts, rows = [], []
    for text in args.pairs:
        label, content_path, style_path = resolve_pair(text)
        content = resize_max_side(load_image(content_path), 1024)
        style = resize_max_side(load_image(style_path), 1024)
        table, speedups = time_to_quality(args, content, style)
        parts.append(f"### {label}\n\n{table}")
        rows.append((label, speedups))
        print(parts[-1], file=sys.stderr)
    names = [schedule_name(*sch) for sch in args.schedules]
    lines = [
        f"Speed-up of each multi-scale schedule over single-scale {args.quality_size} px L-BFGS "
        f"({args.steps} iterations), per pair",
        "",
        "| pair | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    fmt = lambda v: "not reached" if v is None else f"{v:.2f}x"  # noqa: E731
    lines += [f"| {label} | " + " | ".join(fmt(v) for v in sp) + " |" for label, sp in rows]
    medians = []
    for i in range(len(names)):
        # A schedule that never got there counts as no speed-up at all for the median.
        values = [0.0 if v is None else v for v in (sp[i] for _, sp in rows)]
        medians.append(f"**{float(np.median(values)):.2f}x**")
    lines.append("| median | " + " | ".join(medians) + " |")
    return "\n\n".join([*parts, "\n".join(lines)])


def parse_schedule(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """'256:150,512:300' -> ((256, 512), (150, 300))."""
    pairs = [p.split(":") for p in text.split(",")]
    return tuple(int(a) for a, _ in pairs), tuple(int(b) for _, b in pairs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    ap.add_argument("--content", default=None)
    ap.add_argument("--style", default=None)
    ap.add_argument("--steps", type=int, default=300, help="single-scale L-BFGS iterations (the target)")
    ap.add_argument(
        "--schedule",
        dest="schedules",
        type=parse_schedule,
        action="append",
        help="coarse-to-fine schedule SIDE:MAX_STEPS,...; may repeat (default 256:150,512:300)",
    )
    ap.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[256, 512, 1024])
    ap.add_argument(
        "--algos", type=lambda s: s.split(","), default=["gatys-lbfgs", "gatys-adam", "deepdream"]
    )
    ap.add_argument("--iters", type=int, default=10, help="iterations per speed/memory cell")
    ap.add_argument(
        "--pairs",
        type=lambda s: s.split(","),
        default=None,
        help="time-to-quality over several CONTENT:STYLE file stems of /work/shared/data, e.g. "
        "tubingen:van_gogh_starry_night,chicago:munch_the_scream (a summary table with the median)",
    )
    ap.add_argument("--quality-size", type=int, default=512, help="side of the time-to-quality runs")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--diagnose", action="store_true", help="only the blur-sensitivity table")
    ap.add_argument("--diagnose-steps", type=int, default=150, help="iterations of the coarse result")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    ap.add_argument("--cell-algo", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cell-size", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--cell-steps", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.cell_algo:
        print(json.dumps(cell(args)))
        return 0
    args.schedules = args.schedules or [parse_schedule("256:150,512:300")]
    parts = [
        f"Machine: {machine(args.device)}, {platform.python_version()}. Load average at start: {load_avg()}.",
    ]
    if args.diagnose:
        args.skip_speed = args.skip_quality = True
        parts.append(blur_diagnosis(args))
    if not args.skip_speed:
        parts.append(run_cells(args))
    if not args.skip_quality:
        if args.pairs:
            parts.append(time_to_quality_pairs(args))
        else:
            parts.append(time_to_quality(args, *images(args))[0])
    parts.append(f"Load average at end: {load_avg()}.")
    text = "\n\n".join(parts) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
