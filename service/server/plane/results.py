"""What the data plane returns to the transports (plain dataclasses, no transport types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from service.core.classify import Prediction


@dataclass(frozen=True)
class StylizeResult:
    image: bytes
    content_type: str
    model: str
    version: str
    provider: str
    timings: dict[str, float]  # milliseconds: decode, queue, inference, encode, total
    width: int = 0
    height: int = 0
    batch_size: int = 1
    array: np.ndarray | None = field(default=None, repr=False)  # the (H, W, 3) uint8 result itself
    style_cached: bool = False  # a style-image call whose painting's statistics came from the cache
    style: str = ""  # what painted it: the style's name or a blend's label "a:0.7,b:0.3"
    background: str = ""  # a masked call's outside: a style, a blend's label or "photo"; "" unmasked


@dataclass(frozen=True)
class SaliencyOutput:
    data: bytes  # PNG (overlay, heatmap), raw float32, .npy or JSON, by ``output``
    content_type: str
    width: int
    height: int
    method: str
    target: int
    predictions: list[Prediction]
    map: np.ndarray = field(repr=False)  # float32 (H, W) in [0, 1]
