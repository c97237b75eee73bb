"""What the attacks share: options, the classifier's view of the image, quantisation inside the budget,
success tests and the result (perturbed image, magnified perturbation, top-k before and after)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.classify import Prediction, center_crop_resize, top_k
from service.core.errors import InvalidArgument
from service.core.labels import resolve_class
from service.core.render.common import check_image
from service.core.tensors import image_to_tensor

MAX_EPS = 64.0  # 0-255 units; beyond a quarter of the range it is no longer a "small" perturbation
MAX_STEPS = 1000


@dataclass
class AttackOptions:
    eps: float = 2.0  # L-infinity budget in 0-255 pixel levels
    target: int | str | None = None  # ImageNet index or label: targeted; None: untargeted (leave top-1)
    steps: int = 20  # PGD iterations (FGSM is one step)
    step_size: float | None = None  # PGD step in 0-255 units; None: 2.5 * eps / steps (Madry et al.)
    random_start: bool = True  # PGD: start at a uniform point of the eps-ball (Madry et al.)
    early_stop: bool = True  # PGD: stop at the first step whose quantised image succeeds
    size: int = 224  # side of the square the classifier sees (its own centre crop)
    seed: int = 0
    top: int = 5


@dataclass(frozen=True)
class AttackResult:
    original: np.ndarray  # (size, size, 3) uint8: the classifier's view of the input (centre crop)
    adversarial: np.ndarray  # same shape: original + perturbation, quantised, inside the budget
    before: list[Prediction]
    after: list[Prediction]
    target: int | None
    success: bool  # targeted: top-1 is the target; untargeted: top-1 is no longer the original's
    steps: int  # gradient steps taken (PGD stops early on success)
    linf: int  # largest |adversarial - original| in 0-255 levels (<= floor(eps))

    def magnified(self, scale: float | None = None) -> np.ndarray:
        """The perturbation made visible: 128 + scale * delta (default: stretched to the full range)."""
        delta = self.adversarial.astype(np.float32) - self.original.astype(np.float32)
        s = scale if scale is not None else 127.0 / max(1.0, float(np.abs(delta).max()))
        return np.clip(np.round(128.0 + s * delta), 0, 255).astype(np.uint8)


def check_options(o: AttackOptions) -> None:
    if not (math.isfinite(o.eps) and 0 < o.eps <= MAX_EPS):
        raise InvalidArgument(f"eps must be in (0, {MAX_EPS:g}] (0-255 pixel units), got {o.eps}.")
    if not 1 <= o.steps <= MAX_STEPS:
        raise InvalidArgument(f"steps must be in 1..{MAX_STEPS}, got {o.steps}.")
    if o.step_size is not None and not (math.isfinite(o.step_size) and 0 < o.step_size <= MAX_EPS):
        raise InvalidArgument(f"step_size must be in (0, {MAX_EPS:g}] (0-255 units), got {o.step_size}.")
    if not 32 <= o.size <= 1024:
        raise InvalidArgument(f"size must be in 32..1024, got {o.size}.")
    if not 1 <= o.top <= 1000:
        raise InvalidArgument(f"top must be in 1..1000, got {o.top}.")


def classifier_view(backbone: Backbone, image: np.ndarray, size: int) -> tuple[np.ndarray, Tensor]:
    """The centre crop the classifier sees, as uint8 and as a (1, 3, size, size) tensor in [0, 1].

    The attack perturbs this crop itself: resizing a perturbed full-size photo afterwards would blur the
    perturbation away, so the result is the crop (what was attacked is exactly what is saved).
    """
    check_image(image)
    crop = np.ascontiguousarray(center_crop_resize(image, size))
    return crop, image_to_tensor(crop, backbone.device)


def resolve_target(backbone: Backbone, target: int | str | None) -> int | None:
    return None if target is None else resolve_class(target, backbone.labels)


def quantize(x: Tensor, x0: Tensor, eps: float) -> Tensor:
    """Round to uint8 levels, then project into the budget: |q - x0| <= floor(eps) levels, q in [0, 1]."""
    levels = math.floor(eps + 1e-6)
    q = torch.round(x * 255.0)
    base = torch.round(x0 * 255.0)
    return torch.clamp(torch.minimum(torch.maximum(q, base - levels), base + levels), 0, 255) / 255.0


def project(x: Tensor, x0: Tensor, eps01: float) -> Tensor:
    """Projection onto the L-infinity ball of radius ``eps01`` around ``x0``, intersected with [0, 1]."""
    return torch.clamp(torch.minimum(torch.maximum(x, x0 - eps01), x0 + eps01), 0.0, 1.0)


def succeeded(logits: Tensor, original: int, target: int | None) -> bool:
    top1 = int(logits.argmax(dim=1)[0])
    return top1 == target if target is not None else top1 != original


def predict(backbone: Backbone, x: Tensor, k: int) -> tuple[Tensor, list[Prediction]]:
    with torch.no_grad():
        logits = backbone(x)
    return logits, top_k(logits, backbone.labels, k)[0]


def to_uint8(x: Tensor) -> np.ndarray:
    arr = torch.round(x[0].detach() * 255.0).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def finish(
    backbone: Backbone,
    crop: np.ndarray,
    x0: Tensor,
    x_adv: Tensor,
    before: list[Prediction],
    target: int | None,
    steps: int,
    o: AttackOptions,
) -> AttackResult:
    """Quantise the final image, classify what will be saved and measure the budget actually used."""
    q = quantize(x_adv, x0, o.eps)
    logits, after = predict(backbone, q, o.top)
    adversarial = to_uint8(q)
    linf = int(np.abs(adversarial.astype(np.int16) - crop.astype(np.int16)).max())
    return AttackResult(
        original=crop,
        adversarial=adversarial,
        before=before,
        after=after,
        target=target,
        success=succeeded(logits, before[0].index, target),
        steps=steps,
        linf=linf,
    )
