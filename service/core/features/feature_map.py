"""Draw a feature map: thumbnails at their 2-D embedding coordinates, framed in the colour of their predicted
class (the "t-SNE of CNN codes" pictures of Karpathy's CS231n notes, after van der Maaten & Hinton 2008)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.core.errors import InvalidArgument

# tab10, then grey for every class outside the ten most frequent
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127),
)  # fmt: skip
OTHER = (200, 200, 200)
LEGEND_W = 260


def draw_feature_map(
    images: Sequence[np.ndarray],
    coords: np.ndarray,
    labels: Sequence[str],
    size: int = 2000,
    thumb: int = 64,
    title: str = "",
) -> np.ndarray:
    """(H, W, 3) uint8: a ``size`` square canvas plus a legend of the most frequent predicted classes."""
    if len(images) != coords.shape[0] or len(labels) != len(images):
        raise InvalidArgument("images, coordinates and labels must have one entry per image.")
    if not 256 <= size <= 8000 or not 8 <= thumb <= size // 4:
        raise InvalidArgument(f"size must be in 256..8000 and thumb in 8..size/4, got {size} and {thumb}.")
    counts = Counter(labels).most_common(len(PALETTE) - 1)
    colours = {label: PALETTE[i] for i, (label, _) in enumerate(counts)}
    canvas = Image.new("RGB", (size + LEGEND_W, size), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    fs = max(12, size // 110)  # font size readable at the canvas' own scale
    font = ImageFont.load_default(size=fs)
    span = size - thumb - 8
    # Draw the rarest classes first so the frequent (coloured) ones stay visible where thumbnails overlap.
    order = sorted(range(len(images)), key=lambda i: labels[i] in colours)
    for i in order:
        x = 4 + round(float(coords[i, 0]) * span)
        y = 4 + round((1.0 - float(coords[i, 1])) * span)  # y up, as in a plot
        pil = Image.fromarray(images[i])
        pil.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
        colour = colours.get(labels[i], OTHER)
        draw.rectangle([x - 3, y - 3, x + pil.width + 2, y + pil.height + 2], fill=colour)
        canvas.paste(pil, (x, y))
    if title:
        draw.text((8, size - 8), title, fill=(60, 60, 60), font=font, anchor="ld")
    lx, row = size + 12, round(fs * 1.6)
    draw.text((lx, 12), "predicted class", fill=(0, 0, 0), font=font)
    for n, (label, count) in enumerate([*counts, ("other classes", 0)]):
        y = 12 + (n + 1) * row
        draw.rectangle([lx, y, lx + fs, y + fs], fill=colours.get(label, OTHER))
        text = f"{label[:20]} ({count})" if count else label
        draw.text((lx + fs + 6, y), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)
