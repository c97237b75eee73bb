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
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.core.backbones import get_backbone  # noqa: E402
from service.core.errors import Cancelled  # noqa: E402
from service.core.imageio import load_image, resize_max_side  # noqa: E402
from service.core.progress import CancelToken, Progress  # noqa: E402
from service.core.render.deepdream import DreamOptions, deepdream  # noqa: E402
from service.core.render.gatys import GatysOptions, gatys, gatys_loss, preset_for  # noqa: E402
from service.core.render.losses import (  # noqa: E402
    gram_matrix,
    normalized_content_loss,
    normalized_style_loss,
)
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image  # noqa: E402

SHARED = Path("/work/shared/data")
DEFAULT_CONTENT = SHARED / "content/tubingen.jpg"
DEFAULT_STYLE = SHARED / "styles/van_gogh_starry_night.jpg"
FALLBACK_CONTENT = ROOT / "docs/samples/chelsea.jpg"  # in the repository: runs where /work/shared is absent
FALLBACK_STYLE = ROOT / "docs/samples/coffee.jpg"


def images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    content = Path(args.content or (DEFAULT_CONTENT if DEFAULT_CONTENT.exists() else FALLBACK_CONTENT))
    style = Path(args.style or (DEFAULT_STYLE if DEFAULT_STYLE.exists() else FALLBACK_STYLE))
    # Keep the inputs modest: the renders resize them anyway, and a 4000 px style costs time to resize.
    return resize_max_side(load_image(content), 1024), resize_max_side(load_image(style), 1024)


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    flags = f" ({torch.backends.cpu.get_cpu_capability()})"
    return f"{os.cpu_count()}-core CPU{flags}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


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


def reflect_tile(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, h, w) mirrored and repeated until it covers (height, width), then cropped to it."""
    while x.shape[2] < height:
        x = torch.cat([x, x.flip(2)], 2)
    while x.shape[3] < width:
        x = torch.cat([x, x.flip(3)], 3)
    return x[:, :, :height, :width]


def blur_diagnosis(args: argparse.Namespace) -> str:
    """Why a coarse start helps so little: the 512 px style loss of images that only lack fine detail.

    Each row is evaluated with the 512 px targets of the time-to-quality runs, one style tap at a time
    (weighted as in the objective). A painting resampled down to 256 px and back up carries no new
    content at all, only less detail, so its loss measures how much the taps penalise blur alone.
    """
    device = args.device
    backbone = get_backbone("efficientnet_lite0", device)
    content, style = images(args)
    size = args.quality_size
    taps = preset_for(backbone).style_taps

    def there_and_back(img: np.ndarray, side: int) -> np.ndarray:
        x = image_to_tensor(img, device)
        h, w = scale_to_side(img.shape[0], img.shape[1], side)
        return tensor_to_image(resize_tensor(resize_tensor(x, h, w), x.shape[2], x.shape[3]))

    def bilinear(img: np.ndarray) -> np.ndarray:  # the resampling the targets are built with
        h, w = scale_to_side(img.shape[0], img.shape[1], size)
        return tensor_to_image(resize_tensor(image_to_tensor(img, device), h, w))

    photo = bilinear(content)
    painting = bilinear(style)
    rows = [
        ("the photo (single-scale start)", photo),
        ("the painting itself (the target)", painting),
        ("the painting, resampled with Lanczos instead", resize_max_side(style, size)),
        (f"the painting, {size // 2} px and back", there_and_back(painting, size // 2)),
        (f"the photo, {size // 2} px and back", there_and_back(photo, size // 2)),
    ]
    # The start of a 256 -> 512 schedule's second stage, and two ways of putting fine detail back.
    coarse = gatys(backbone, content, [style], GatysOptions(size=size // 2, steps=args.diagnose_steps))
    up = resize_tensor(image_to_tensor(coarse, device), photo.shape[0], photo.shape[1])
    photo_t = image_to_tensor(photo, device)
    painting_t = image_to_tensor(painting, device)
    h2, w2 = scale_to_side(painting.shape[0], painting.shape[1], size // 2)
    painting_detail = reflect_tile(
        painting_t - resize_tensor(resize_tensor(painting_t, h2, w2), *painting_t.shape[2:]),
        photo.shape[0],
        photo.shape[1],
    )
    h2, w2 = scale_to_side(photo.shape[0], photo.shape[1], size // 2)
    photo_detail = photo_t - resize_tensor(resize_tensor(photo_t, h2, w2), photo.shape[0], photo.shape[1])
    rows += [
        (
            f"{size // 2} px result ({args.diagnose_steps} L-BFGS its), upsampled (the schedule's start)",
            tensor_to_image(up),
        ),
        ("the same + the photo's fine detail", tensor_to_image((up + photo_detail).clamp(0, 1))),
        (
            "the same + the painting's fine detail (tiled)",
            tensor_to_image((up + photo_detail + painting_detail).clamp(0, 1)),
        ),
    ]
    lines = [
        f"{size} px style loss (weighted) of images that differ only in fine detail, per style tap",
        "",
        "| image | " + " | ".join(f"`{t}`" for t in taps) + " | style total |",
        "|---" * (len(taps) + 2) + "|",
    ]
    for name, img in rows:
        per_tap = [
            gatys_loss(backbone, img, content, [style], GatysOptions(size=size, style_taps=(t,)))["style"]
            for t in taps
        ]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in per_tap) + f" | {sum(per_tap):.1f} |")
    # Is there a tap that does not mind? The same ratio for taps across the whole network.
    candidates = ["stem", "block1.expand", "block1", "block3.expand", "block3", "block5.expand", "block5",
                  "block8.expand", "block8.dw", "block8", "block10", "block12", "head"]  # fmt: skip
    lines += [
        "",
        "Per tap, across the network: style distance (normalised Gram) to the 512 px painting of the painting "
        f"downsampled to {size // 2} px and back, as a fraction of the photo's distance (1.0: blur alone "
        "costs as much as having the photo's content instead of the painting's)",
        "",
        "| tap | photo | painting, down and back | fraction |",
        "|---|---:|---:|---:|",
    ]
    with torch.no_grad():
        target = backbone.features(image_to_tensor(painting, device), candidates)
        back = backbone.features(image_to_tensor(there_and_back(painting, size // 2), device), candidates)
        ph = backbone.features(image_to_tensor(photo, device), candidates)
        for t in candidates:
            g = gram_matrix(target[t])
            d_photo = float(normalized_style_loss(gram_matrix(ph[t]), g))
            d_back = float(normalized_style_loss(gram_matrix(back[t]), g))
            lines.append(f"| `{t}` | {d_photo:.3g} | {d_back:.3g} | {d_back / d_photo:.2f} |")
    # The content term minds blur as much: a coarse result cannot hold the photo's 512 px features.
    content_taps = ["stem", "block3", "block5", "block6", "block7.dw", "block7", "block8", "block10", "head"]
    lines += [
        "",
        f"Per tap: content distance (normalised, as the content term computes it) of the photo downsampled "
        f"to {size // 2} px and back, to the {size} px photo",
        "",
        "| " + " | ".join(f"`{t}`" for t in content_taps) + " |",
        "|---:" * len(content_taps) + "|",
    ]
    with torch.no_grad():
        sharp = backbone.features(photo_t, content_taps)
        blurred = backbone.features(image_to_tensor(there_and_back(photo, size // 2), device), content_taps)
        lines.append(
            "| "
            + " | ".join(f"{float(normalized_content_loss(blurred[t], sharp[t])):.2f}" for t in content_taps)
            + " |"
        )
    return "\n".join(lines)


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
