"""Grad-CAM and Grad-CAM++ on a chosen feature tap.

* Grad-CAM: Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017, "Grad-CAM: Visual Explanations from
  Deep Networks via Gradient-based Localization" (arXiv:1610.02391). With A^k the tap's channels and
  g^k = dS_c/dA^k: w_k = mean_ij g^k_ij and L = ReLU(sum_k w_k A^k).
* Grad-CAM++: Chattopadhyay, Sarkar, Howlader & Balasubramanian 2018, "Grad-CAM++: Improved Visual
  Explanations for Deep Convolutional Networks" (arXiv:1710.11063). w_k = sum_ij a^k_ij ReLU(g^k_ij) with
  a^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3), the closed form for an exponential of the score, computed from
  first-order gradients only (as in the paper's released code).

The raw map is sum_k w_k A^k *before* the ReLU (Captum's ``LayerGradCam(relu_attributions=False)``); the
[0, 1] normalisation keeps its positive part, which is Grad-CAM's ReLU. It has the tap's resolution
(7 x 7 for a 224 px input on the default taps) and is upsampled bilinearly to the input.

The tap activation comes from ``backbone.features(x, [tap, "logits"])`` in the same graph as the logits,
so no hook is needed (and every tap works, including block outputs that are not one module's output).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.saliency.base import Ticker, target_scores


@dataclass(frozen=True)
class CamOptions:
    tap: str = ""  # feature tap to explain at; "" = the backbone's default_cam_tap (its last conv map)


def cam_tap(backbone: Backbone, options: CamOptions) -> str:
    tap = options.tap or backbone.default_cam_tap
    backbone.tap_module(tap)  # InvalidArgument listing the taps for an unknown name
    if tap in ("pool", "logits", "fc6", "relu6", "fc7", "relu7"):
        raise InvalidArgument(
            f"Grad-CAM needs a spatial feature map; tap {tap!r} of {backbone.name} has none."
        )
    return tap


def tap_activations_and_gradients(
    backbone: Backbone, x: Tensor, targets: Tensor, tap: str
) -> tuple[Tensor, Tensor]:
    """The tap's activation A (B, K, h, w) and dS_c/dA, from one forward and one backward."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)  # makes A part of a graph; no gradient reaches xg itself
        feats = backbone.features(xg, [tap, "logits"])
        act = feats[tap]
        if act.ndim != 4:
            raise InvalidArgument(f"Tap {tap!r} is not a spatial feature map (shape {tuple(act.shape)}).")
        (grad,) = torch.autograd.grad(target_scores(feats["logits"], targets).sum(), act)
    return act.detach(), grad


def gradcam_weights(act: Tensor, grad: Tensor) -> Tensor:
    """Grad-CAM channel weights: the spatial mean of the gradient, (B, K, 1, 1)."""
    return grad.mean(dim=(2, 3), keepdim=True)


def gradcam_pp_weights(act: Tensor, grad: Tensor) -> Tensor:
    """Grad-CAM++ channel weights (B, K, 1, 1) from first-order gradients (Chattopadhyay et al. eq. 19)."""
    g2 = grad.pow(2)
    g3 = grad.pow(3)
    denom = 2.0 * g2 + act.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    return (alpha * grad.clamp(min=0)).sum(dim=(2, 3), keepdim=True)


def _cam(
    backbone: Backbone, x: Tensor, targets: Tensor, options: CamOptions, ticker: Ticker, pp: bool
) -> Tensor:
    act, grad = tap_activations_and_gradients(backbone, x, targets, cam_tap(backbone, options))
    ticker.tick()
    weights = gradcam_pp_weights(act, grad) if pp else gradcam_weights(act, grad)
    return (weights * act).sum(dim=1)  # (B, h, w), signed


def gradcam(backbone: Backbone, x: Tensor, targets: Tensor, options: CamOptions, ticker: Ticker) -> Tensor:
    return _cam(backbone, x, targets, options, ticker, pp=False)


def gradcam_pp(backbone: Backbone, x: Tensor, targets: Tensor, options: CamOptions, ticker: Ticker) -> Tensor:
    return _cam(backbone, x, targets, options, ticker, pp=True)
