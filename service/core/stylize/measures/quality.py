"""The picture measures of one render, together: structure, grid score and droplets.

See ``structure``, ``grid`` and ``droplets`` for each definition; this module only runs them on one
(render, photo, painting) triple and keeps the photo's own grid score beside the render's, since a
photo of a building has a grid of its own (windows, tiles) that the render may fairly keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.core.stylize.measures.droplets import droplet_score
from service.core.stylize.measures.grid import grid_score
from service.core.stylize.measures.structure import structure


@dataclass(frozen=True)
class PictureQuality:
    structure: float  # edge correlation with the photo: 1 same layout, about 0 unrelated
    grid: float  # grid score of the render (log10 of the worst periodic spike over its ring)
    photo_grid: float  # the photo's own grid score at the same size
    grid_peaks: dict[int, float] = field(default_factory=dict)  # period px -> the render's score there
    droplets: float = float("nan")  # per mille of the render in droplets; NaN without a painting

    @property
    def grid_over_photo(self) -> float:
        """How much stronger the render's worst periodic spike is than the photo's, in log10 units."""
        return self.grid - self.photo_grid


def picture_quality(
    render: np.ndarray,
    photo: np.ndarray,
    painting: np.ndarray | None = None,
    palette: np.ndarray | None = None,
    photo_grid: float | None = None,
) -> PictureQuality:
    """All measures of ``render`` (uint8, lossless) made from ``photo`` with the style of ``painting``.

    ``photo_grid`` (the photo's ``grid_score().score``) and ``palette`` (``palette_chroma`` of the
    painting) may be passed when already known; they depend on the photo or the painting only.
    """
    g = grid_score(render)
    own = grid_score(photo).score if photo_grid is None else photo_grid
    drops = float("nan") if painting is None else droplet_score(render, photo, painting, palette)
    return PictureQuality(structure(render, photo), g.score, own, g.peaks, drops)
