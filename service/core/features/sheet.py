"""Contact sheet of a nearest-neighbour query: the query, then its k nearest gallery images with distances."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.core.errors import InvalidArgument

CAPTION = 34  # px of caption strip under each tile (two lines)


def _tile(image: np.ndarray, side: int) -> Image.Image:
    """``image`` fitted into a ``side`` square (aspect kept, white margins)."""
    pil = Image.fromarray(image)
    pil.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (side, side), (255, 255, 255))
    out.paste(pil, ((side - pil.width) // 2, (side - pil.height) // 2))
    return out


def _fit(
    draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont | ImageFont.FreeTypeFont
) -> str:
    while text and draw.textlength(text, font=font) > width - 4:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def neighbour_sheet(
    query: np.ndarray,
    neighbours: Sequence[tuple[np.ndarray, str, float]],
    tile: int = 160,
    columns: int = 5,
    query_label: str = "query",
) -> np.ndarray:
    """(H, W, 3) uint8 grid: the query first (framed), then each (image, name, cosine distance)."""
    if tile < 32:
        raise InvalidArgument(f"tile must be at least 32 px, got {tile}.")
    cells = [(query, query_label, "")] + [(im, name, f"d = {d:.3f}") for im, name, d in neighbours]
    columns = max(1, min(columns, len(cells)))
    rows = -(-len(cells) // columns)
    pad = 6
    sheet = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + CAPTION + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for n, (image, name, note) in enumerate(cells):
        x = pad + (n % columns) * (tile + pad)
        y = pad + (n // columns) * (tile + CAPTION + pad)
        sheet.paste(_tile(image, tile), (x, y))
        if n == 0:  # the query gets a frame so it is not mistaken for a result
            draw.rectangle([x - 3, y - 3, x + tile + 2, y + tile + 2], outline=(220, 40, 40), width=3)
        draw.text((x + 2, y + tile + 3), _fit(draw, name, tile, font), fill=(20, 20, 20), font=font)
        draw.text((x + 2, y + tile + 17), note, fill=(90, 90, 90), font=font)
    return np.asarray(sheet)
