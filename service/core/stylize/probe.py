"""The sanity probe every style model passes before it is listed (at start and on a hot reload).

A file can have the right sha256 and open in ONNX Runtime yet not be a working model: a graph exported
with the wrong input layout, a half-trained net whose weights overflowed to NaN, an fp16 graph whose
activations overflow. The warm-up runs would not catch these (they clamp the output to uint8, and NaN
casts to 0), and warm-up is skipped in tests and in ``atelier`` commands that load one model. So each
model gets one small run on a fixed, non-square gradient, and its raw output must honour the graph
contract (docs/ARCHITECTURE.md): the input's shape, finite values, within [0, 255].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.core.errors import ModelLoadError

PROBE_HEIGHT, PROBE_WIDTH = 32, 48  # small (one run costs well under a millisecond per model), non-square
RANGE_SLACK = 0.5  # rounding of an fp16 graph's clamp


def probe_input(dtype: type[np.floating[Any]] = np.float32) -> np.ndarray:
    """(1, 3, 32, 48) RGB in [0, 255]: horizontal, vertical and diagonal ramps, one per channel."""
    ys, xs = np.mgrid[0:PROBE_HEIGHT, 0:PROBE_WIDTH].astype(np.float32)
    r = xs / (PROBE_WIDTH - 1)
    g = ys / (PROBE_HEIGHT - 1)
    b = (r + g) / 2
    return (np.stack([r, g, b])[None] * 255.0).astype(dtype)


def sanity_probe(
    session: Any,
    input_name: str,
    dtype: type[np.floating[Any]],
    output_name: str,
    file: str,
    feeds: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Run ``session`` once on ``probe_input``; raise ``ModelLoadError`` saying what is wrong with it.

    ``feeds``: further inputs (a multi-style net's (B, S) style weights); the probe image is repeated to
    their first dimension, so each row of them is checked."""
    x = probe_input(dtype)
    if feeds:
        x = np.repeat(x, len(next(iter(feeds.values()))), axis=0)
    try:
        y = np.asarray(session.run([output_name], {input_name: x, **(feeds or {})})[0], dtype=np.float32)
    except Exception as exc:  # ORT's own exception classes: the graph cannot run on a valid input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{file}: the sanity probe could not run: {first}") from None
    if y.shape != x.shape:
        raise ModelLoadError(f"{file}: the sanity probe gave shape {y.shape} for an input of {x.shape}")
    bad = int(np.count_nonzero(~np.isfinite(y)))
    if bad:
        raise ModelLoadError(f"{file}: the sanity probe gave {bad} non-finite values (NaN or Inf)")
    low, high = float(y.min()), float(y.max())
    if low < -RANGE_SLACK or high > 255.0 + RANGE_SLACK:
        raise ModelLoadError(f"{file}: the sanity probe gave values in [{low:.1f}, {high:.1f}], not [0, 255]")
