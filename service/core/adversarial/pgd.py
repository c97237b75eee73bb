"""Projected Gradient Descent under an L-infinity budget: Madry, Makelov, Schmidt, Tsipras & Vladu (2018),
"Towards Deep Learning Models Resistant to Adversarial Attacks" (arXiv:1706.06083).

Iterated FGSM with projection: from a uniform random start in the eps-ball, ``steps`` signed-gradient steps
of ``step_size`` (default 2.5 * eps / steps, the paper's choice), each followed by projection onto the ball
and [0, 1]. Untargeted steps increase the loss of the original top-1; targeted steps decrease the loss of
the target. With ``early_stop`` the attack stops at the first step whose *quantised* image succeeds, so the
reported step count is the number of steps a stored uint8 image needed.
"""

from __future__ import annotations

import numpy as np
import torch

from service.core.adversarial.common import (
    AttackOptions,
    AttackResult,
    check_options,
    classifier_view,
    finish,
    predict,
    project,
    quantize,
    resolve_target,
    succeeded,
)
from service.core.adversarial.fgsm import fgsm_step
from service.core.backbones.base import Backbone
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import Stepper, releasing_memory


@releasing_memory
def pgd(
    backbone: Backbone,
    image: np.ndarray,
    options: AttackOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> AttackResult:
    """PGD on the classifier's centre crop of ``image``; progress reports the target's probability."""
    o = options or AttackOptions()
    check_options(o)
    target = resolve_target(backbone, o.target)
    crop, x0 = classifier_view(backbone, image, o.size)
    eps01 = o.eps / 255.0
    alpha = (o.step_size if o.step_size is not None else 2.5 * o.eps / o.steps) / 255.0
    _, before = predict(backbone, x0, o.top)
    label = before[0].index if target is None else target
    x = x0.clone()
    if o.random_start:
        g = torch.Generator().manual_seed(o.seed)  # drawn on the CPU: the same start on every device
        noise = (torch.rand(x0.shape, generator=g) * 2.0 - 1.0) * eps01
        x = project(x0 + noise.to(x0.device), x0, eps01)
    stepper = Stepper(o.steps, progress, cancel)
    stepper.stage = "pgd" if target is None else f"pgd -> {backbone.labels[target]}"
    taken = 0
    for _ in range(o.steps):
        stepper.begin()
        step = fgsm_step(backbone, x, alpha, label, target is not None)
        x = project(step, x0, eps01)
        taken += 1
        logits, _ = predict(backbone, quantize(x, x0, o.eps), 1)
        prob = float(torch.softmax(logits, dim=1)[0, label])
        stepper.end({"p_target" if target is not None else "p_original": prob})
        if o.early_stop and succeeded(logits, before[0].index, target):
            break
    return finish(backbone, crop, x0, x, before, target, taken, o)
