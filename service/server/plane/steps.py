"""Blocking steps the data plane (``dataplane.py``) runs in its executors, and its output-format check.

Plain functions of their arguments: decode + prepare runs in the codec executor (finish + encode, with a
mask's composite, is ``painting.finish_encode_parts``), the engine's own (unbatched) stylize and the
backbone lookup in the fast executor.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from service.core.errors import InvalidArgument
from service.core.imageio import decode_image, normalize_format
from service.server.plane.config import PlaneConfig
from service.server.plane.options import build_options

if TYPE_CHECKING:
    from service.core.stylize.engine import StyleEngine, StylizeOptions

__all__ = [
    "check_output",
    "decode_prepare",
    "fast_options",
    "get_backbone_for",
    "stylize_alone",
]
Opts = TypeVar("Opts", bound="StylizeOptions")


def check_output(fmt: str, quality: int) -> tuple[str, int]:
    if not 1 <= quality <= 100:
        raise InvalidArgument(f"quality must be between 1 and 100, got {quality}.")
    return normalize_format(fmt), quality


def fast_options(cls: type[Opts], given: dict[str, Any], cap: int) -> Opts:
    """A fast call's options (``StylizeOptions``, or ``ArbitraryOptions`` for a style image): the one
    parser every algorithm uses, the class's own checks, then ``max_side`` at most the setting ``cap``
    (and ``cap`` when the call gave none)."""
    opts = build_options(cls, given, what="stylize")
    opts.check()
    if opts.max_side is not None and opts.max_side > cap:
        raise InvalidArgument(f"max_side must be between 16 and {cap}, got {opts.max_side}.")
    return replace(opts, max_side=opts.max_side or cap)


def decode_prepare(
    engine: StyleEngine, data: bytes | np.ndarray, opts: Any, config: PlaneConfig
) -> np.ndarray:
    """Decode (bytes) or take (an (H, W, 3) uint8 array, already checked against the pixel limit by the
    caller: ``plane/inference.py``) the image, then the engine's prepare (validation, downscale)."""
    image = data if isinstance(data, np.ndarray) else decode_image(data, config.limits)
    return engine.prepare(image, opts)


def stylize_alone(
    engine: StyleEngine, style: str, prepared: np.ndarray, opts: Any, weights: np.ndarray | None = None
) -> tuple[np.ndarray, int, float]:
    """``engine.stylize`` with its ONNX Runtime runs counted: (image, runs, seconds of running).
    ``weights``: a multi-style net's style weights (``style`` then names the net)."""
    runs: list[float] = []
    out = engine.stylize(
        style, prepared, opts, on_run=lambda images, seconds: runs.append(seconds), weights=weights
    )
    return out, len(runs), sum(runs)


def get_backbone_for(cfg: Any, name: str | None) -> Any:
    from service.core.backbones import get_backbone

    return get_backbone(name or cfg.default_backbone, cfg.device, cfg.backbone_weights)
