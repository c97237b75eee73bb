"""Fast Gradient Sign Method: Goodfellow, Shlens & Szegedy (2015), "Explaining and Harnessing Adversarial
Examples" (arXiv:1412.6572).

One step of size eps along the sign of the gradient of the cross-entropy loss:
untargeted ``x + eps * sign(grad_x L(x, y))`` (y: the original top-1), targeted (Kurakin et al. 2017)
``x - eps * sign(grad_x L(x, t))`` toward class t; then clipped to [0, 1] and quantised inside the budget.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from service.core.adversarial.common import (
    AttackOptions,
    AttackResult,
    check_options,
    classifier_view,
    finish,
    predict,
    project,
    resolve_target,
)
from service.core.backbones.base import Backbone
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import Stepper, releasing_memory


@releasing_memory
def fgsm(
    backbone: Backbone,
    image: np.ndarray,
    options: AttackOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> AttackResult:
    """FGSM on the classifier's centre crop of ``image`` (see ``common.classifier_view``)."""
    o = options or AttackOptions()
    check_options(o)
    target = resolve_target(backbone, o.target)
    crop, x0 = classifier_view(backbone, image, o.size)
    stepper = Stepper(1, progress, cancel)
    stepper.stage = "fgsm"
    _, before = predict(backbone, x0, o.top)
    stepper.begin()
    x_adv = fgsm_step(
        backbone, x0, o.eps / 255.0, before[0].index if target is None else target, target is not None
    )
    stepper.end({"eps": o.eps})
    return finish(backbone, crop, x0, x_adv, before, target, 1, o)


def fgsm_step(backbone: Backbone, x: torch.Tensor, eps01: float, label: int, targeted: bool) -> torch.Tensor:
    """One signed-gradient step of size ``eps01`` (in [0, 1] units) from ``x``, clipped to [0, 1]."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(backbone(x), torch.tensor([label], device=x.device))
    (grad,) = torch.autograd.grad(loss, x)
    direction = -1.0 if targeted else 1.0
    with torch.no_grad():
        return project(x + direction * eps01 * grad.sign(), x.detach(), eps01)
