"""Saliency maps as pictures and bytes: colour-mapped heatmaps, overlays on the image, PNG and .npy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from service.core.errors import InvalidArgument
from service.core.imageio import encode_image, resize_to

OUTPUT_FORMATS = ("png", "npy")


def _check_map(saliency: np.ndarray) -> np.ndarray:
    if saliency.ndim != 2:
        raise InvalidArgument(f"Expected an (H, W) saliency map, got shape {saliency.shape}.")
    return np.clip(np.nan_to_num(saliency.astype(np.float32)), 0.0, 1.0)


def heatmap(saliency: np.ndarray, cmap: str = "inferno") -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 through a matplotlib colour map."""
    import matplotlib

    try:
        colours = matplotlib.colormaps[cmap]
    except KeyError:
        raise InvalidArgument(f"Unknown colour map {cmap!r} (try inferno, viridis, jet, magma).") from None
    rgba = colours(_check_map(saliency), bytes=True)
    return np.ascontiguousarray(rgba[..., :3])


def overlay(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.5, cmap: str = "inferno") -> np.ndarray:
    """Blend the heatmap over ``image`` ((H, W, 3) uint8) with opacity ``alpha`` in [0, 1].

    A map of another size is resized to the image first.
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidArgument(f"alpha (overlay opacity) must be between 0 and 1, got {alpha}.")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgument(f"Expected an (H, W, 3) image, got shape {image.shape}.")
    heat = heatmap(saliency, cmap)
    if heat.shape[:2] != image.shape[:2]:
        heat = resize_to(heat, image.shape[1], image.shape[0])
    out = (1.0 - alpha) * image.astype(np.float32) + alpha * heat.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def npy_bytes(saliency: np.ndarray) -> bytes:
    """The float32 map as a .npy file (for services that post-process the raw values)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(saliency, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def encode_saliency(
    saliency: np.ndarray,
    fmt: str = "png",
    image: np.ndarray | None = None,
    alpha: float = 0.5,
    cmap: str = "inferno",
) -> bytes:
    """Encode a map: ``npy`` (float32), or ``png`` (the heatmap, or its overlay on ``image`` if given)."""
    key = fmt.lower().lstrip(".")
    if key == "npy":
        return npy_bytes(_check_map(saliency))
    if key != "png":
        raise InvalidArgument(f"Unsupported saliency format {fmt!r}; use png or npy.")
    picture = heatmap(saliency, cmap) if image is None else overlay(image, saliency, alpha, cmap)
    return encode_image(picture, "png")


def save_saliency(
    path: str | Path,
    saliency: np.ndarray,
    image: np.ndarray | None = None,
    alpha: float = 0.5,
    cmap: str = "inferno",
) -> Path:
    """Write ``path`` in the format its suffix names (.png or .npy)."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".") or "png"
    data = encode_saliency(saliency, fmt, image, alpha, cmap)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def contact_sheet(
    image: np.ndarray,
    maps: list[tuple[str, np.ndarray]],
    columns: int = 4,
    alpha: float = 0.55,
    cmap: str = "inferno",
    tile: int = 224,
) -> np.ndarray:
    """A grid: the image, then one labelled overlay per (title, map). Returns (H, W, 3) uint8."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    th, tw = (tile, round(w * tile / h)) if h <= w else (round(h * tile / w), tile)
    tiles = [("input", resize_to(image, tw, th))]
    tiles += [
        (title, overlay(resize_to(image, tw, th), resize_to_map(m, th, tw), alpha, cmap)) for title, m in maps
    ]
    rows = (len(tiles) + columns - 1) // columns
    label_h = 18
    sheet = Image.new("RGB", (columns * tw, rows * (th + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (title, pic) in enumerate(tiles):
        x0, y0 = (i % columns) * tw, (i // columns) * (th + label_h)
        sheet.paste(Image.fromarray(pic), (x0, y0 + label_h))
        draw.text((x0 + 4, y0 + 3), title, fill=(0, 0, 0))
    return np.asarray(sheet)


def resize_to_map(saliency: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float map (PIL mode F)."""
    from PIL import Image

    if saliency.shape == (height, width):
        return saliency
    pic = Image.fromarray(np.ascontiguousarray(saliency, dtype=np.float32)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.asarray(pic, dtype=np.float32)
