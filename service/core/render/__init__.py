"""Slow renders in PyTorch: Gatys style transfer, DeepDream and the CS231n feature visualisations.

Every long-running function takes ``progress`` and ``cancel`` (``service.core.progress``), runs on the
backbone's device and returns (H, W, 3) uint8 images.
"""

from __future__ import annotations

from service.core.render.class_viz import ClassVizOptions, class_visualization
from service.core.render.deepdream import DreamOptions, check_deepdream, deepdream
from service.core.render.filters import filter_grid
from service.core.render.gatys import GatysOptions, check_gatys, gatys, gatys_loss, preserve_colors
from service.core.render.inversion import InversionOptions, feature_inversion
from service.core.render.patches import Patch, PatchOptions, max_activating_patches, patch_grid
from service.core.render.texture import TextureOptions, texture_synthesis

__all__ = [
    "ClassVizOptions",
    "DreamOptions",
    "GatysOptions",
    "InversionOptions",
    "Patch",
    "PatchOptions",
    "TextureOptions",
    "check_deepdream",
    "check_gatys",
    "class_visualization",
    "deepdream",
    "feature_inversion",
    "filter_grid",
    "gatys",
    "gatys_loss",
    "max_activating_patches",
    "patch_grid",
    "preserve_colors",
    "texture_synthesis",
]
