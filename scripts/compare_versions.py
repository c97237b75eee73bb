#!/usr/bin/env python
"""Two versions of one style model side by side, as a person judges a replacement: per photo, the photo
and each version's render at 100 % (longer side --size px), then a 2x crop of the photo's flattest area
(sky, walls: where a crosshatch or a droplet shows first) and a 2x crop of its busiest (faces, windows:
where the photo's structure is lost first).

Both versions render through the serving engine (ONNX Runtime, CPU provider), from two models folders
(copy the old version's folder aside before exporting the new one over it):

    .venv/bin/python scripts/compare_versions.py night_cafe --old /tmp/models_v1 --new models \\
        --content ../shared/data/content -o docs/images/night_cafe_v1_v2.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw

from service.core.imageio import load_image
from service.core.stylize.engine import StyleEngine, StylizeOptions
from service.core.stylize.evaluate import list_images

CROP = 96  # px of the render cropped, shown at 2x


def window(photo: np.ndarray, pick: str, size: int = CROP, stride: int = 8) -> tuple[int, int]:
    """(y, x) of the size x size window with the smallest ("flat") or largest ("busy") grey spread."""
    g = photo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    scores = {
        (y, x): float(g[y : y + size, x : x + size].std())
        for y in range(0, g.shape[0] - size + 1, stride)
        for x in range(0, g.shape[1] - size + 1, stride)
    }
    return (min if pick == "flat" else max)(scores, key=scores.__getitem__)


def zoom(image: np.ndarray, at: tuple[int, int]) -> Image.Image:
    y, x = at
    crop = Image.fromarray(image[y : y + CROP, x : x + CROP])
    return crop.resize((2 * CROP, 2 * CROP), Image.Resampling.NEAREST)


def render(models: Path, name: str, photos: list[np.ndarray], size: int) -> tuple[str, list[np.ndarray]]:
    engine = StyleEngine.load(models, providers=("CPUExecutionProvider",), warmup=False)
    with engine:
        info = engine.info(name)
        options = StylizeOptions(max_side=size)
        return f"{name} v{info.version}", [engine.stylize(name, p, options) for p in photos]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="the model's name in both folders")
    p.add_argument("--old", type=Path, required=True, help="models folder with the old version")
    p.add_argument("--new", type=Path, default=Path("models"), help="models folder with the new version")
    p.add_argument("--content", type=Path, required=True, help="folder of photos (or one photo)")
    p.add_argument("--photos", nargs="*", default=(), help="only these photo stems")
    p.add_argument("--size", type=int, default=384, help="longer side of the renders (default 384)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the sheet (.jpg at quality 80, or .png)")
    args = p.parse_args(argv)
    files = [args.content] if args.content.is_file() else list(list_images(args.content).values())
    files = [f for f in files if not args.photos or f.stem in args.photos]
    photos = [_fit(load_image(f), args.size) for f in files]
    versions = [render(folder, args.model, photos, args.size) for folder in (args.old, args.new)]
    rows = []
    for i, photo in enumerate(photos):
        images = [photo, *(renders[i] for _, renders in versions)]
        h, w = images[1].shape[:2]
        images = [np.asarray(Image.fromarray(im).resize((w, h))) for im in images]
        flat, busy = window(images[0], "flat"), window(images[0], "busy")
        tiles = [Image.fromarray(im) for im in images]
        tiles += [zoom(im, flat) for im in images] + [zoom(im, busy) for im in images]
        rows.append(tiles)
    labels = ["photo", *(label for label, _ in versions)]
    return _write(rows, labels, args.out)


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """The photo at ``size`` px on the longer side, as the engine's ``max_side`` sees it."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    shape = max(1, round(w * scale)), max(1, round(h * scale))
    return np.asarray(Image.fromarray(image).resize(shape, Image.Resampling.LANCZOS))


def _write(rows: list[list[Image.Image]], labels: list[str], out: Path) -> int:
    """One row per photo: the three images, the three flat crops, the three busy crops; captions on top."""
    head = 20
    widths = [t.width for t in rows[0]]  # the captions follow the first row's tiles
    height = head + sum(max(t.height for t in row) + 6 for row in rows)
    width = max(sum(t.width + 6 for t in row) for row in rows)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = 0
    for j, width in enumerate(widths):
        group = ("", " (flat, 2x)", " (busy, 2x)")[j // len(labels)]
        draw.text((x + 4, 4), labels[j % len(labels)] + group, fill=(20, 20, 20))
        x += width + 6
    y = head
    for row in rows:
        x = 0
        for tile in row:
            sheet.paste(tile, (x, y))
            x += tile.width + 6
        y += max(t.height for t in row) + 6
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=80) if out.suffix.lower() in (".jpg", ".jpeg") else sheet.save(out)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
