"""ONNX Runtime provider selection for the style engine: which of the preferred providers can run here.

``onnxruntime-gpu`` lists CUDA even on a machine without a driver or a visible GPU and then fails noisily
for every session, so CUDA is checked against the driver (``libcuda``) before it is asked for. The names are
re-exported by ``service.core.stylize.engine``, where they used to live.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

# The engine's logger, so the fallback warnings stay with the engine's records (the CLI's
# quiet_onnxruntime and the tests listen on that name).
log = logging.getLogger("service.core.stylize.engine")

__all__ = ["available_providers", "provider_choice"]


def provider_choice(preferred: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The providers of ``preferred`` that can run here (CPU if none), and why each other one cannot."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    unusable = {p: "not in this onnxruntime build" for p in preferred if p not in have}
    if "CUDAExecutionProvider" in have and "CUDAExecutionProvider" in preferred:
        # onnxruntime-gpu lists CUDA even on machines without a GPU, then fails noisily per session.
        why = _cuda_unusable()
        if why:
            unusable["CUDAExecutionProvider"] = why
    chosen = [p for p in preferred if p not in unusable] or ["CPUExecutionProvider"]
    return chosen, unusable


def available_providers(preferred: Sequence[str]) -> list[str]:
    """``preferred`` filtered to the providers this onnxruntime build can use here; CPU if none is left."""
    chosen, unusable = provider_choice(preferred)
    for provider, why in unusable.items():
        log.warning("ONNX Runtime provider %s not usable: %s", provider, why)
    if not any(p in chosen for p in preferred):
        log.warning("None of the preferred providers is available; using CPUExecutionProvider")
    return chosen


def _cuda_unusable() -> str | None:
    """Why the CUDA provider cannot run here (no driver, no visible GPU), or None if it may."""
    import ctypes
    import sys

    try:
        cuda = ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return "no CUDA driver (libcuda) on this machine"
    count = ctypes.c_int(0)
    # A driver without a device (or with CUDA_VISIBLE_DEVICES hiding all) makes every session fail and retry.
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "no GPU visible to the CUDA driver"
    return None
