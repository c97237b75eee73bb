"""Shared pieces of the saliency methods: the method description, option parsing, target scores, ticks.

Every method is a function ``attribute(backbone, x, targets, options, ticker) -> Tensor`` that takes a batch
``x`` of shape (B, 3, H, W) in [0, 1] and the class index to explain for each image (B,), and returns a *raw*
map (B, h, w): signed, unnormalised, at the method's own resolution (the input's for pixel methods, the
tap's for Grad-CAM). ``service.core.saliency.api`` turns raw maps into [0, 1] maps at the input resolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback, ProgressClock

# How a raw map becomes a [0, 1] map: "positive" keeps the evidence *for* the class (negative values are
# clamped to 0) and divides by the maximum; "minmax" rescales the whole range (RISE maps carry a large
# constant offset, so only their relative values mean anything).
Normalisation = Literal["positive", "minmax"]

AttributeFn = Callable[[Backbone, Tensor, Tensor, Any, "Ticker"], Tensor]


@dataclass(frozen=True)
class Method:
    """One registered saliency method."""

    name: str
    title: str  # e.g. "Grad-CAM (Selvaraju et al. 2017)"
    options: type[Any]  # a frozen dataclass whose fields are the method's parameters, all with defaults
    attribute: AttributeFn
    # Progress ticks (one per forward/backward chunk) for (options, batch size, height, width).
    ticks: Callable[[Any, int, int, int], int] = lambda options, batch, height, width: 1
    normalisation: Normalisation = "positive"
    # Pixel-level gradient maps are dominated by a few extreme pixels; clipping at this percentile before
    # scaling (Smilkov et al. 2017 clip at the 99th) gives a readable map. None: divide by the maximum.
    clip_percentile: float | None = None


def parse_options(cls: type[Any], params: Mapping[str, object] | None, method: str) -> Any:
    """Build the options dataclass ``cls`` from a plain dict (JSON body, CLI ``--param k=v``).

    Values are coerced to the type of the field's default (so "16" works for an int), unknown keys raise
    ``InvalidArgument`` naming the valid ones; range checks live in each dataclass's ``__post_init__``.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, object] = {}
    for key, value in (params or {}).items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise InvalidArgument(
                f"Unknown parameter {key!r} for saliency method {method!r}. Valid: {valid}."
            )
        default = fields[key].default
        values[key] = _coerce(key, value, default)
    return cls(**values)


def _coerce(key: str, value: object, default: object) -> object:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("1", "true", "yes")
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)  # type: ignore[call-overload]
        if isinstance(default, float):
            return float(value)  # type: ignore[arg-type]
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise InvalidArgument(f"Parameter {key!r} must be a {kind}, got {value!r}.") from None
    return value


def check_range(name: str, value: float, low: float, high: float | None = None) -> None:
    """Raise ``InvalidArgument`` unless ``low <= value`` (and ``value <= high`` when given)."""
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgument(f"{name} must be {bound}, got {value}.")


def target_scores(logits: Tensor, targets: Tensor) -> Tensor:
    """The explained score of each row: the target class's logit (pre-softmax), shape (B,)."""
    return logits.gather(1, targets.view(-1, 1)).squeeze(1)


def input_gradients(backbone: Backbone, x: Tensor, targets: Tensor) -> Tensor:
    """d logit[target] / d x for every image of the batch, shape (B, 3, H, W).

    One forward and one backward for the whole batch: images are independent in eval mode, so the
    gradient of the summed scores is each image's own gradient.
    """
    with torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        score = target_scores(backbone(xg), targets).sum()
        (grad,) = torch.autograd.grad(score, xg)
    return grad


def chunks(n: int, size: int) -> list[range]:
    """Split range(n) into consecutive ranges of at most ``size``."""
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


class Ticker:
    """Cancellation checks and progress reports for one ``explain`` call (one tick per chunk of work)."""

    def __init__(
        self,
        total: int,
        cancel: CancelToken | None = None,
        progress: ProgressCallback | None = None,
        stage: str = "",
    ) -> None:
        self.cancel = cancel
        self.progress = progress
        self.stage = stage
        self.step = 0
        self.clock = ProgressClock(max(1, total))

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.check()

    def tick(self) -> None:
        """Count one unit of work done, report it, then honour a cancel request before the next one."""
        self.step += 1
        if self.progress is not None:
            self.progress(self.clock.report(min(self.step, self.clock.total), stage=self.stage))
        self.check()
