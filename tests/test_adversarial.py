"""FGSM, PGD and fooling images on the embedded classifier: budgets, targets, cancel, and Captum's FGSM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.core.adversarial.common import AttackOptions, classifier_view
from service.core.adversarial.fgsm import fgsm, fgsm_step
from service.core.adversarial.fooling import FoolingOptions, fooling_image
from service.core.adversarial.pgd import pgd
from service.core.backbones import Backbone
from service.core.errors import Cancelled, InvalidArgument
from service.core.labels import resolve_class
from service.core.progress import CancelToken, Progress

SIZE = 128  # small crops keep each gradient step cheap on CI's CPU


def _linf(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_pgd_with_a_large_budget_reaches_the_target(lite0: Backbone, chelsea: np.ndarray) -> None:
    ipod = resolve_class("ipod")
    reports: list[Progress] = []
    # at the classifier's own 224 px: smaller crops make the signed steps oscillate around the target
    result = pgd(lite0, chelsea, AttackOptions(eps=8, target="ipod", steps=10), reports.append)
    assert "cat" in result.before[0].label
    assert result.success and result.after[0].index == ipod and result.target == ipod
    assert 1 <= result.steps <= 10 and len(reports) == result.steps  # early stop on success
    assert _linf(result.adversarial, result.original) == result.linf <= 8
    assert reports[-1].losses["p_target"] == pytest.approx(result.after[0].probability, abs=1e-4)


@pytest.mark.parametrize("eps", [1, 2.5])
def test_perturbation_never_exceeds_the_budget(lite0: Backbone, coffee: np.ndarray, eps: float) -> None:
    # early_stop off and a step larger than eps: every step pushes against the projection
    options = AttackOptions(eps=eps, steps=2, step_size=3 * eps, early_stop=False, size=SIZE)
    for attack in (fgsm, pgd):
        result = attack(lite0, coffee, options)
        assert result.adversarial.dtype == np.uint8
        assert _linf(result.adversarial, result.original) <= int(eps)
        assert result.linf == int(eps)  # the signed step uses all of it


def test_untargeted_pgd_changes_the_prediction(lite0: Backbone, chelsea: np.ndarray) -> None:
    result = pgd(lite0, chelsea, AttackOptions(eps=4, steps=10))
    assert result.success and result.after[0].index != result.before[0].index


@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_matches_captum(lite0: Backbone, chelsea: np.ndarray, targeted: bool) -> None:
    from captum.robust import FGSM

    _, x = classifier_view(lite0, chelsea, SIZE)
    label = resolve_class("ipod") if targeted else int(lite0(x).argmax())
    eps01 = 2 / 255
    ours = fgsm_step(lite0, x, eps01, label, targeted)
    attack = FGSM(
        lite0, loss_func=torch.nn.CrossEntropyLoss(reduction="none"), lower_bound=0.0, upper_bound=1.0
    )
    theirs = attack.perturb(x, eps01, torch.tensor([label]), targeted=targeted)
    # Captum treats |gradient| < 1e-6 as zero (no step) where sign() steps: allow those few pixels only
    differ = (ours - theirs).abs() > 1e-6
    assert differ.float().mean() < 1e-3
    assert ((theirs - x)[differ].abs() < 1e-6).all()
    assert (ours - x).abs().max() > 0.9 * eps01  # it did move
    # and the quantised image fgsm() returns is Captum's, rounded
    result = fgsm(lite0, chelsea, AttackOptions(eps=2, size=SIZE, target="ipod" if targeted else None))
    captum_u8 = (theirs[0] * 255).round().permute(1, 2, 0).to(torch.uint8).numpy()
    assert (result.adversarial != captum_u8).any(axis=2).mean() < 1e-3


def test_attacks_honour_cancel_and_refuse_bad_options(lite0: Backbone, chelsea: np.ndarray) -> None:
    token = CancelToken()
    token.cancel("test")
    with pytest.raises(Cancelled):
        pgd(lite0, chelsea, AttackOptions(size=SIZE), cancel=token)
    with pytest.raises(Cancelled):
        fooling_image(lite0, "goldfish", FoolingOptions(size=SIZE), cancel=token)
    for bad in (AttackOptions(eps=0), AttackOptions(eps=float("nan")), AttackOptions(steps=0)):
        with pytest.raises(InvalidArgument):
            pgd(lite0, chelsea, bad)
    with pytest.raises(InvalidArgument, match="Unknown class"):
        fgsm(lite0, chelsea, AttackOptions(target="no such thing"))


def test_fooling_image_from_noise_is_confident(lite0: Backbone) -> None:
    goldfish = resolve_class("goldfish")
    result = fooling_image(lite0, goldfish, FoolingOptions(steps=30, confidence=0.9, seed=1))
    assert result.predictions[0].index == goldfish and result.probability >= 0.9
    assert result.steps < 30 and result.image.shape == (224, 224, 3)
    # seeded: the same options give the same image
    small = FoolingOptions(size=64, steps=2, confidence=1.0, seed=1)
    np.testing.assert_array_equal(
        fooling_image(lite0, goldfish, small).image, fooling_image(lite0, goldfish, small).image
    )
