"""Picture measures of a stylised render, the defects a person sees and the Gram distance does not:
``structure`` (is the photo's layout still there), ``grid_score`` (a 2-8 px crosshatch) and
``droplet_score`` (vivid colour blobs from neither the photo nor the painting). Pure numpy and scipy."""

from service.core.stylize.measures.droplets import droplet_mask, droplet_score, palette_chroma
from service.core.stylize.measures.grid import GRID_PERIODS, GridScore, grid_score, power_spectrum
from service.core.stylize.measures.quality import PictureQuality, picture_quality
from service.core.stylize.measures.structure import edge_magnitude, structure

__all__ = [
    "GRID_PERIODS",
    "GridScore",
    "PictureQuality",
    "droplet_mask",
    "droplet_score",
    "edge_magnitude",
    "grid_score",
    "palette_chroma",
    "picture_quality",
    "power_spectrum",
    "structure",
]
