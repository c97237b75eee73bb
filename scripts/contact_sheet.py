#!/usr/bin/env python
"""Contact sheet of the shipped styles: one content photo, every model in models/manifest.json, labelled.

Runs the models through the serving engine (ONNX Runtime, CPU provider) exactly as the service would, and
writes a JPEG no wider than --width px, lowering the quality until it fits under --max-kb.

    python scripts/contact_sheet.py --content ../shared/data/content/tubingen.jpg -o docs/images/contact_sheet.jpg
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.core.imageio import load_image
from service.core.stylize.engine import StyleEngine, StylizeOptions


def _label(tile: Image.Image, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> Image.Image:
    """The tile with a caption strip underneath."""
    strip = 22
    out = Image.new("RGB", (tile.width, tile.height + strip), (255, 255, 255))
    out.paste(tile, (0, 0))
    draw = ImageDraw.Draw(out)
    width = draw.textlength(text, font=font)
    draw.text(((tile.width - width) / 2, tile.height + 3), text, fill=(20, 20, 20), font=font)
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib): Pillow's default font has no glyph for the artists' accents
    (Sakai Hōitsu's ō came out as a box)."""
    try:
        from matplotlib import get_data_path

        return ImageFont.truetype(str(Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def build_sheet(content: np.ndarray, models_dir: Path, tile_side: int, columns: int) -> Image.Image:
    engine = StyleEngine.load(models_dir, providers=("CPUExecutionProvider",), warmup=False)
    if engine.load_errors:
        print(f"skipped: {engine.load_errors}", file=sys.stderr)
    font = _font(14)
    options = StylizeOptions(max_side=tile_side)
    tiles = [_label(Image.fromarray(engine.prepare(content, options)), "original", font)]
    with engine:
        for info in engine.styles():
            # A multi net's style of a single net's name must go to the multi net: by name alone the
            # engine picks the single net.
            if info.net and info.net != info.name:
                choice = engine.choose(style=info.name, net=info.net)
                result = engine.stylize(choice.net, content, options, weights=choice.weights)
            else:
                result = engine.stylize(info.name, content, options)
            caption = f"{info.name} ({info.arch}) - {info.artist}"
            tiles.append(_label(Image.fromarray(result), caption, font))
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * h), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * w, (i // columns) * h))
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", type=Path, required=True, help="the content photo")
    parser.add_argument("--models", type=Path, default=Path("models"), help="models folder (default models/)")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/images/contact_sheet.jpg"))
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--width", type=int, default=1600, help="maximum sheet width in px (default 1600)")
    parser.add_argument("--max-kb", type=int, default=480, help="maximum file size in KB (default 480)")
    args = parser.parse_args()

    tile_side = args.width // args.columns
    sheet = build_sheet(load_image(args.content), args.models, tile_side, args.columns)
    for quality in (88, 82, 76, 70, 64, 58, 50):
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
        if buf.tell() <= args.max_kb * 1024:
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.getvalue())
    print(f"{args.out}: {sheet.width}x{sheet.height}, {buf.tell() / 1024:.0f} KB, JPEG quality {quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
