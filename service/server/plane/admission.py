"""Admission control for jobs: how much memory and work one request may ask for, checked before it is
queued.

Option bounds (``plane/bounds.py``) keep each value sane; these caps keep their product sane, from the
settings (``max_gatys_styles``, ``max_job_input_pixels``, ``max_job_work_mpx``):

* **styles**: the number of style images of one Gatys request (each is decoded and kept as a tensor).
* **input pixels**: the decoded pixels of all images of one job together (content, styles, guide), read
  from the image headers before anything is decoded. Ten 49-megapixel styles once peaked at 8.6 GB.
* **work**: an estimate of the job's cost in megapixel-iterations, the pixels each forward/backward pass
  sees summed over the passes (Gatys: steps x pixels per scale; DeepDream: steps x pixels per octave;
  saliency: passes x the pixels of the working image). It grows with every option that multiplies cost
  (steps, octaves, scales, samples), so no combination within the bounds can run for hours.

Going over a cap is the caller's to fix, so it is bad input (INVALID_ARGUMENT / 400; 413 for pixels), not
RESOURCE_EXHAUSTED (which says "retry later").
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.core.errors import ImageTooLarge, InvalidArgument


@dataclass(frozen=True)
class AdmissionLimits:
    """Per-request caps (no defaults: built from ``Settings``)."""

    max_styles: int  # settings.max_gatys_styles
    max_input_pixels: int  # settings.max_job_input_pixels
    max_work_mpx: float  # settings.max_job_work_mpx


def header_pixels(data: bytes) -> int:
    """Width x height from the image header (no pixels decoded); 0 when unreadable (decoding says why)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(bytes(data))) as img:
                width, height = img.size
    except Exception:  # any unreadable header: decode_image gives the typed error with the reason
        return 0
    return max(0, int(width)) * max(0, int(height))


def check_styles(count: int, limits: AdmissionLimits) -> None:
    if count > limits.max_styles:
        raise InvalidArgument(
            f"A Gatys request takes at most {limits.max_styles} style images, got {count} "
            "(the server's setting max_gatys_styles)."
        )


def check_input_pixels(images: Sequence[bytes], limits: AdmissionLimits) -> None:
    """Refuse a job whose images together would decode to more pixels than the cap, before decoding."""
    total = sum(header_pixels(data) for data in images)
    if total > limits.max_input_pixels:
        raise ImageTooLarge(
            f"The {len(images)} images of this job are {total / 1e6:.1f} megapixels together; one job may "
            f"send at most {limits.max_input_pixels / 1e6:.1f} megapixels (setting max_job_input_pixels)."
        )


def check_work(work_px: float, limits: AdmissionLimits, what: str, levers: str) -> None:
    """Refuse a job whose estimated work is above the cap, naming the options that lower it."""
    mpx = work_px / 1e6
    if mpx > limits.max_work_mpx:
        raise InvalidArgument(
            f"This {what} job would take about {mpx:,.0f} megapixel-iterations (pixels x passes); the "
            f"limit is {limits.max_work_mpx:,.0f} (setting max_job_work_mpx). Lower {levers}."
        )


def gatys_work(content_hw: tuple[int, int], styles_hw: Sequence[tuple[int, int]], options: Any) -> float:
    """Pixels x iterations of a Gatys run (``GatysOptions`` already checked by ``check_gatys``): each
    scale's steps at the result's size there, plus one forward pass per style image per scale."""
    from service.core.tensors import scale_to_side

    sides = tuple(options.scales) if options.scales else (options.size,)
    steps = tuple(options.scale_steps) if options.scale_steps else (options.steps,) * len(sides)
    work = 0.0
    for side, n in zip(sides, steps, strict=True):
        h, w = scale_to_side(content_hw[0], content_hw[1], side)
        work += n * h * w
        style_side = max(16, round(side * options.style_scale))
        for sh, sw in styles_hw:
            a, b = scale_to_side(sh, sw, style_side)
            work += a * b
    return work


def dream_work(height: int, width: int, options: Any) -> float:
    """Pixels x steps of a DeepDream run at ``height`` x ``width`` (its working size), over its octaves."""
    from service.core.render.deepdream import octave_sizes

    sizes = octave_sizes(height, width, options.octaves, options.octave_scale)
    return float(options.steps * sum(h * w for h, w in sizes))


def saliency_work(method: str, options: Any, height: int, width: int, size: int | None = 224) -> float:
    """Forward/backward passes x pixels of the working image (the shorter side scaled to ``size``)."""
    from service.core.saliency.api import working_size

    h, w = working_size(height, width, size)
    if method == "smoothgrad":
        passes = options.samples
    elif method == "integrated_gradients":
        passes = options.steps
    elif method == "rise":
        passes = options.masks
    elif method == "occlusion":
        from service.core.saliency.occlusion import window_offsets

        passes = len(window_offsets(h, options.window, options.stride)) * len(
            window_offsets(w, options.window, options.stride)
        )
    else:  # one gradient (guided Grad-CAM: two)
        passes = 2
    return float(passes * h * w)
