"""Droplets: saturated colour blobs in a render that come from neither the photo nor the painting.

Feed-forward style nets with instance normalisation paint small vivid blobs (often magenta, violet or
rainbow-fringed) into flat areas: the network spends a few very strong activations to steer the
normalisation statistics, and the decoder turns them into colour (Karras et al. 2019, "Analyzing and
Improving the Image Quality of StyleGAN", arXiv:1912.04958, section 2, on the same "droplet" artefact of
AdaIN; jcjohnson/fast-neural-style issue 81 for style nets). A person sees them as colours that belong to
neither the photo nor the painting, so that is what this measure looks for (a design of this project,
not a published metric):

1. Chroma (max - min of R, G, B) and hue of every pixel of the render, the photo (resized to the render)
   and the painting (at ``PALETTE_SIDE`` px).
2. Allowed chroma of a render pixel of hue sector s (``HUE_SECTORS`` sectors, each with its two
   neighbours, so a slight hue shift is free): the larger of
   * the painting's ``PALETTE_QUANTILE`` chroma quantile in those sectors (its palette: a vivid blue in
     Starry Night is allowed everywhere, a vivid magenta is not), and
   * the photo's largest chroma in those sectors within ``LOCAL_WINDOW`` px of the pixel (a red roof
     may stay red where the roof is).
3. A pixel is vivid-foreign when its chroma is at least ``MIN_CHROMA`` and exceeds the allowed chroma by
   ``MARGIN``.
4. The nets paint droplets as a pixel mosaic (a blob that reads as magenta is a 1 px checker of vivid
   orange and blue; rainbow confetti is vivid pixels of every hue among dark ones), so a pixel is inside
   a droplet where at least ``MIN_DENSITY`` of the ``DENSITY_WINDOW`` square around it is vivid-foreign.
5. Droplets are the 8-connected regions of those pixels with at least ``MIN_AREA`` px that are compact
   (they fill at least ``MIN_FILL`` of their bounding box): lone specks and thin colour fringes along
   edges are left out.

The score is the share of the render covered by droplets, in per mille (1 = one pixel in a thousand).
A clean render scores 0; a few visible blobs on a 512 px render score above 1.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from service.core.stylize.measures._pixels import check_rgb, chroma_hue, long_side_shape, resize_plane

HUE_SECTORS = 12
PALETTE_SIDE = 256  # painting size the palette is read at (the colours, not the strokes, matter)
PALETTE_QUANTILE = 0.995  # of the painting's chroma within a hue sector: its most vivid paint, no outliers
PALETTE_MIN_PIXELS = 20  # a hue sector with fewer painting pixels than this has no palette (chroma 0)
LOCAL_WINDOW = 9  # px: how far around a pixel the photo's colours count as "there"
MIN_CHROMA = 0.35  # below this a colour is not vivid, whatever its surroundings
MARGIN = 0.2  # chroma above the allowed chroma before a pixel counts as foreign
DENSITY_WINDOW = 5  # px: the square over which the share of vivid-foreign pixels is taken
MIN_DENSITY = 0.3  # that share, for a pixel to be inside a droplet (a 1 px checker is 0.5)
MIN_AREA = 25  # px: a droplet is at least about a 5x5 patch
MIN_FILL = 0.25  # area / bounding-box area: compact blobs, not fringes along an edge


def _sectors(hue: np.ndarray) -> np.ndarray:
    return np.minimum((hue * HUE_SECTORS).astype(np.int64), HUE_SECTORS - 1)


def _with_neighbours(per_sector: np.ndarray) -> np.ndarray:
    """Max over each hue sector and its two neighbours (the hue circle wraps), along axis 0."""
    return np.maximum(per_sector, np.maximum(np.roll(per_sector, 1, 0), np.roll(per_sector, -1, 0)))


def palette_chroma(painting: np.ndarray) -> np.ndarray:
    """(HUE_SECTORS,) the painting's vivid chroma per hue sector, neighbours included."""
    h, w = long_side_shape(painting.shape[0], painting.shape[1], PALETTE_SIDE)
    small = np.stack([resize_plane(painting[..., c].astype(np.float64), h, w) for c in range(3)], axis=2)
    chroma, hue = chroma_hue(np.clip(small, 0, 255))
    sector = _sectors(hue).ravel()
    out = np.zeros(HUE_SECTORS)
    for s in range(HUE_SECTORS):
        values = chroma.ravel()[sector == s]
        if values.size >= PALETTE_MIN_PIXELS:
            out[s] = np.quantile(values, PALETTE_QUANTILE)
    return _with_neighbours(out)


def _photo_local_chroma(photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(HUE_SECTORS, H, W) the photo's largest chroma of each hue sector (and its neighbours) near each
    pixel, on the render's grid."""
    if photo.shape[:2] != shape:
        photo = np.stack([resize_plane(photo[..., c].astype(np.float64), *shape) for c in range(3)], axis=2)
    chroma, hue = chroma_hue(np.clip(photo, 0, 255))
    sector = _sectors(hue)
    local = np.stack(
        [ndimage.maximum_filter(np.where(sector == s, chroma, 0.0), LOCAL_WINDOW) for s in range(HUE_SECTORS)]
    )
    return _with_neighbours(local)


def droplet_mask(
    render: np.ndarray, photo: np.ndarray, painting: np.ndarray, palette: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) bool: the render's pixels that are part of a droplet. ``palette`` is ``palette_chroma``
    of the painting, when it is already known (it depends on the painting only)."""
    check_rgb(render, "render"), check_rgb(photo, "photo"), check_rgb(painting, "painting")
    chroma, hue = chroma_hue(render)
    sector = _sectors(hue)
    palette = palette_chroma(painting) if palette is None else palette
    local = _photo_local_chroma(photo, render.shape[:2])
    photo_allowed = np.take_along_axis(local, sector[None], axis=0)[0]
    allowed = np.maximum(palette[sector], photo_allowed)
    foreign = (chroma >= MIN_CHROMA) & (chroma - allowed > MARGIN)
    # The nets paint droplets as a mosaic: vivid foreign pixels alternate with ordinary ones at 1-2 px
    # (a blob that reads as magenta is a checker of orange and blue), so a droplet is where such pixels
    # are dense, not where they touch; isolated specks stay below the density.
    dense = ndimage.uniform_filter(foreign.astype(np.float64), DENSITY_WINDOW) >= MIN_DENSITY
    labels, count = ndimage.label(dense, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return dense
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    keep = np.zeros(count + 1, dtype=bool)
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or areas[i] < MIN_AREA:
            continue
        box_area = (box[0].stop - box[0].start) * (box[1].stop - box[1].start)
        keep[i] = areas[i] / box_area >= MIN_FILL
    return keep[labels]


def droplet_score(
    render: np.ndarray, photo: np.ndarray, painting: np.ndarray, palette: np.ndarray | None = None
) -> float:
    """Per mille of the render's area covered by droplets (see the module docstring)."""
    return float(droplet_mask(render, photo, painting, palette).mean() * 1000.0)
