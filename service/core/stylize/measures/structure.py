"""Structure: how much of the photo's edge layout a render keeps.

The Pearson correlation of Sobel edge magnitudes of the render and the photo, both in grey, resized to
``side`` px on the longer side and blurred with a Gaussian of ``sigma`` px first. The blur and the small
size make the measure about the picture's layout (outlines, horizon, windows, a face) rather than the
brush strokes a style adds at the finest scale: an edge-based structure term in the spirit of SSIM's
structure component (Wang, Bovik, Sheikh and Simoncelli 2004, "Image quality assessment: from error
visibility to structural similarity", IEEE TIP 13(4)), taken on gradient magnitudes so a recoloured
render (dark sky painted blue, a red roof painted yellow) still scores on where its edges are.
1 for the same structure, about 0 for unrelated images; 0 when either image has no edges at all.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from service.core.errors import InvalidArgument
from service.core.stylize.measures._pixels import grey, long_side_shape, resize_plane

STRUCTURE_SIDE = 128  # longer side both images are compared at
STRUCTURE_SIGMA = 1.5  # px at that size
FLAT_EDGES = 1e-3  # std of the edge magnitude (grey levels per px) below which an image has no edges


def edge_magnitude(image: np.ndarray, shape: tuple[int, int], sigma: float = STRUCTURE_SIGMA) -> np.ndarray:
    """Sobel gradient magnitude of the blurred grey image resized to ``shape`` (h, w)."""
    g = ndimage.gaussian_filter(resize_plane(grey(image), *shape), sigma, mode="reflect")
    return np.hypot(ndimage.sobel(g, axis=0, mode="reflect"), ndimage.sobel(g, axis=1, mode="reflect"))


def structure(
    render: np.ndarray, photo: np.ndarray, side: int = STRUCTURE_SIDE, sigma: float = STRUCTURE_SIGMA
) -> float:
    """Pearson correlation of the edge magnitudes of ``render`` and ``photo`` (RGB, any sizes: both go to
    the photo's aspect ratio at ``side`` px on the longer side)."""
    if side < 8 or sigma < 0:
        raise InvalidArgument(f"side must be >= 8 and sigma >= 0, got {side}, {sigma}.")
    shape = long_side_shape(photo.shape[0], photo.shape[1], side)
    a = edge_magnitude(render, shape, sigma).ravel()
    b = edge_magnitude(photo, shape, sigma).ravel()
    # An image without edges (blank, or flat after the blur) carries no structure: call it 0, not NaN.
    # The floor is far above the float noise resampling leaves on a constant image (~1e-5 grey levels).
    if a.std() < FLAT_EDGES or b.std() < FLAT_EDGES:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
