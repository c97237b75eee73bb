"""Guided Grad-CAM.

Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization"
(arXiv:1610.02391), section 3.1: the pixel-precise guided-backprop gradient (Springenberg et al. 2015)
multiplied point-wise by the class-discriminative Grad-CAM map upsampled to the input. Two passes: the
Grad-CAM gradient must be the plain one (on VGG, ReLUs lie between the tap and the logits).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.saliency.base import Ticker
from service.core.saliency.gradcam import CamOptions, gradcam
from service.core.saliency.guided_backprop import guided_gradients


def guided_gradcam(
    backbone: Backbone, x: Tensor, targets: Tensor, options: CamOptions, ticker: Ticker
) -> Tensor:
    cam = gradcam(backbone, x, targets, options, ticker).clamp(min=0)  # (B, h, w)
    cam = F.interpolate(cam.unsqueeze(1), size=x.shape[-2:], mode="bilinear", align_corners=False)
    guided = guided_gradients(backbone, x, targets, ticker)  # (B, 3, H, W)
    return (guided * cam).abs().amax(dim=1)
