"""Saliency maps: which pixels a CNN's class score depends on, with faithfulness and sanity checks.

``explain(backbone, images, method, target)`` returns [0, 1] maps at each image's resolution and the top-k
predictions explained. Methods (one file each): gradient, gradient x input, guided backprop, SmoothGrad,
integrated gradients, Grad-CAM, Grad-CAM++, guided Grad-CAM, occlusion and RISE. ``render`` draws heatmaps
and overlays, ``faithfulness`` computes deletion/insertion curves, ``sanity`` the model-randomisation test.
"""

from __future__ import annotations

from service.core.saliency.api import SaliencyResult, attribute, explain, normalise, saliency_maps
from service.core.saliency.registry import METHODS, get_method

__all__ = ["METHODS", "SaliencyResult", "attribute", "explain", "get_method", "normalise", "saliency_maps"]
