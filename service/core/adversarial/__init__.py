"""Adversarial examples on the embedded classifier: FGSM, PGD (L-infinity) and fooling images from noise.

Budgets are in 0-255 pixel units, as the images are stored: a perturbation of ``eps`` moves no pixel value
by more than ``eps`` levels, checked after quantisation to uint8 (``common.quantize``).
"""

from service.core.adversarial.common import AttackOptions, AttackResult

ATTACKS: tuple[str, ...] = ("fgsm", "pgd")

__all__ = ["ATTACKS", "AttackOptions", "AttackResult"]
