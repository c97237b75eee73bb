"""Pixel helpers shared by the picture measures: grey level, resizing a float plane, colour chroma and hue."""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.core.errors import InvalidArgument

# ITU-R BT.601 luma weights: what "grey" means for JPEG and for PIL's "L" mode, so a grey level taken here
# matches what a viewer shows as the image's brightness.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def check_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """The image as an (H, W, 3) array; ``InvalidArgument`` for any other shape or an empty one."""
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidArgument(f"{name} must be an (H, W, 3) RGB array, got shape {image.shape}.")
    return image


def grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 grey level in [0, 255] of an (H, W, 3) uint8 (or float 0..255) RGB image."""
    return np.asarray(check_rgb(image), dtype=np.float64) @ LUMA


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float plane resized to exactly ``height`` x ``width``; PIL's area-aware resampling in float
    (mode "F"), so a downscale is antialiased and no 8-bit rounding is added."""
    if plane.shape == (height, width):
        return plane.astype(np.float64)
    img = Image.fromarray(np.asarray(plane, dtype=np.float32), mode="F")
    method = Image.Resampling.LANCZOS if height * width < plane.size else Image.Resampling.BICUBIC
    return np.asarray(img.resize((width, height), method), dtype=np.float64)


def long_side_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """(h, w) scaled so the longer side is ``side``, keeping the aspect ratio."""
    s = side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def chroma_hue(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSV-style chroma (max - min of R, G, B, in [0, 1]) and hue (in [0, 1), 0 = red) of each pixel.

    Chroma is the colourfulness that does not depend on brightness the way HSV saturation does (a dark
    pixel with one channel at 30 has saturation 1 but chroma 0.12), so dark noise does not count as vivid.
    """
    rgb = np.asarray(check_rgb(image), dtype=np.float64) / 255.0
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    c = hi - lo
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(c > 0, c, 1.0)
    h = np.where(
        hi == r, ((g - b) / safe) % 6.0, np.where(hi == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    return c, np.where(c > 0, h / 6.0, 0.0) % 1.0
