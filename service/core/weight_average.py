"""An exponential moving average of a network's weights, the one that is exported.

Polyak & Juditsky 1992, *Acceleration of Stochastic Approximation by Averaging*: the average of the
iterates of SGD converges faster than the last iterate. Karras et al. 2018 (*Progressive Growing of
GANs*, arXiv 1710.10196) export such an average of their generator for the same reason it is used here:
at a small batch and a constant learning rate the last iterate wanders, and which snapshot a stage
happens to end on decides more of the score than the stage did (the transform nets' 384 px stages at
two crops a step moved up to 12 % in style ratio between checkpoints 1200 CPU s apart).

A checkpoint of a run with an average holds the average as ``model`` (what export, scoring and
``--init-from`` read, so nothing downstream changes) and the training weights as ``model_raw`` (what
``--resume`` trains on).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class WeightAverage:
    """``avg <- decay * avg + (1 - decay) * weights`` after every step; integer buffers are copied."""

    def __init__(self, net: nn.Module, decay: float, state: dict[str, Tensor] | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        source = state if state is not None else net.state_dict()
        self.avg = {k: v.detach().clone() for k, v in source.items()}
        missing = set(net.state_dict()) ^ set(self.avg)
        if missing:
            raise ValueError(f"the average's entries do not match the net: {sorted(missing)[:4]}")

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for key, value in net.state_dict().items():
            avg = self.avg[key]
            if avg.is_floating_point():
                avg.mul_(self.decay).add_(value.detach().to(avg.dtype), alpha=1.0 - self.decay)
            else:
                avg.copy_(value)

    def checkpoint_fields(self, net: nn.Module) -> dict[str, Any]:
        """The ``model`` / ``model_raw`` pair of a checkpoint (see the module docstring)."""
        return {"model": dict(self.avg), "model_raw": net.state_dict()}


def model_fields(net: nn.Module, average: WeightAverage | None) -> dict[str, Any]:
    """A checkpoint's weights: ``model`` alone, or with an average the ``model`` / ``model_raw`` pair."""
    return {"model": net.state_dict()} if average is None else average.checkpoint_fields(net)


def training_weights(ckpt: dict[str, Any]) -> dict[str, Tensor]:
    """The weights a resumed run trains on: ``model_raw`` when the run kept an average, else ``model``."""
    return ckpt.get("model_raw", ckpt["model"])


def resume_average(ckpt: dict[str, Any], net: nn.Module, decay: float) -> WeightAverage | None:
    """The average to go on with (``decay`` 0: none). A checkpoint without one starts it from ``net``."""
    if decay <= 0.0:
        return None
    return WeightAverage(net, decay, ckpt["model"] if "model_raw" in ckpt else None)
