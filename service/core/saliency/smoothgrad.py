"""SmoothGrad.

Smilkov, Thorat, Kim, Viégas & Wattenberg 2017, "SmoothGrad: removing noise by adding noise"
(arXiv:1706.03825): average the vanilla gradient map over ``samples`` copies of the image with Gaussian
noise of standard deviation ``noise * (max(x) - min(x))`` (the paper finds 10-20 % best).

The noise is drawn once per call from ``seed`` and shared by all images of the batch, so an image gets the
same map alone or in a batch; noisy copies of all images go through the net ``batch_size`` rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.saliency.base import Ticker, check_range, chunks, input_gradients


@dataclass(frozen=True)
class SmoothGradOptions:
    samples: int = 16  # noisy copies per image
    noise: float = 0.15  # noise standard deviation as a fraction of the image's value range
    seed: int = 0
    batch_size: int = 8  # noisy images per forward/backward (activations of each are kept for backward)

    def __post_init__(self) -> None:
        check_range("samples", self.samples, 1, 1024)
        check_range("noise", self.noise, 0.0, 10.0)
        check_range("batch_size", self.batch_size, 1)


def smoothgrad_ticks(options: SmoothGradOptions, batch: int, height: int, width: int) -> int:
    return len(chunks(options.samples, max(1, options.batch_size // batch)))


def smoothgrad(
    backbone: Backbone, x: Tensor, targets: Tensor, options: SmoothGradOptions, ticker: Ticker
) -> Tensor:
    b, c, h, w = x.shape
    gen = torch.Generator(device="cpu").manual_seed(options.seed)
    noise = torch.randn((options.samples, c, h, w), generator=gen).to(x.device)
    sigma = options.noise * (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3)))  # (B,)
    total = torch.zeros((b, h, w), device=x.device)
    for part in chunks(options.samples, max(1, options.batch_size // b)):
        n = noise[part.start : part.stop]  # (S, 3, H, W)
        noisy = x.unsqueeze(0) + sigma.view(1, b, 1, 1, 1) * n.unsqueeze(1)  # (S, B, 3, H, W)
        grad = input_gradients(backbone, noisy.reshape(-1, c, h, w), targets.repeat(len(part)))
        total += grad.view(len(part), b, c, h, w).abs().amax(dim=2).sum(dim=0)
        ticker.tick()
    return total / options.samples
