"""Colour handling after a stylisation network: luminance-only transfer and blending with the content.

Luminance-only transfer follows Gatys, Bethge, Hertzmann and Shechtman (2016), "Preserving Color in Neural
Artistic Style Transfer" (arXiv:1606.05897): keep the stylised image's luminance Y and take the colour
channels (I, Q of YIQ) from the content photo, so the painting's strokes and texture arrive without its
palette. YIQ is a linear transform of RGB, so blending two images that share I and Q (``blend``) keeps them.
"""

from __future__ import annotations

import numpy as np

from service.core.errors import InvalidArgument

# NTSC YIQ (FCC 1953 coefficients), rows map RGB -> Y, I, Q.
_RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=np.float64,
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB (any numeric dtype, 0..255) -> (H, W, 3) float64 YIQ on the same scale."""
    return np.asarray(image, dtype=np.float64) @ _RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    """(H, W, 3) float YIQ -> (H, W, 3) float64 RGB (not clipped)."""
    return np.asarray(yiq, dtype=np.float64) @ _YIQ_TO_RGB.T


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _check_pair(content: np.ndarray, stylized: np.ndarray) -> None:
    if content.shape != stylized.shape or content.ndim != 3 or content.shape[2] != 3:
        raise InvalidArgument(
            f"Content and stylised images must both be (H, W, 3) of one size, got {content.shape} "
            f"and {stylized.shape}."
        )


def preserve_color(content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Luminance of ``stylized`` with the chroma (YIQ I, Q) of ``content``; both (H, W, 3) uint8.

    Pixels whose combination falls outside the RGB cube are clipped, which changes their chroma slightly;
    elsewhere the output's I and Q equal the content's up to rounding to uint8.
    """
    _check_pair(content, stylized)
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(stylized)[..., 0]
    return _to_uint8(yiq_to_rgb(yiq))


def blend(content: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
    """``strength * stylized + (1 - strength) * content``; strength 0 returns ``content`` itself (a copy)."""
    _check_pair(content, stylized)
    if not 0.0 <= strength <= 1.0:
        raise InvalidArgument(f"strength must be between 0 and 1, got {strength}.")
    if strength == 0.0:
        return content.copy()
    if strength == 1.0:
        return stylized.copy()
    mixed = strength * stylized.astype(np.float32) + (1.0 - strength) * content.astype(np.float32)
    return _to_uint8(mixed)
