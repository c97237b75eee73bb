"""Plumbing shared by the slow renders: size checks, the per-iteration progress/cancel loop, the image
optimiser (L-BFGS or Adam), jitter and blur, and releasing big tensors when a run stops early."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from service.core.errors import AtelierError, ImageTooLarge, InvalidArgument
from service.core.progress import CancelToken, ProgressCallback, ProgressClock
from service.core.tensors import tensor_to_image

P = ParamSpec("P")
R = TypeVar("R")

OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")

# A loss function of the image being optimised: returns named terms, "total" is the one minimised.
Objective = Callable[[Tensor], Mapping[str, Tensor]]


def check_image(image: np.ndarray, what: str = "image") -> None:
    """Raise ``InvalidArgument`` unless ``image`` is a non-empty (H, W, 3) uint8 array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise InvalidArgument(f"The {what} must be an (H, W, 3) RGB array, got shape {shape}.")
    if image.dtype != np.uint8:
        raise InvalidArgument(f"The {what} must be uint8, got {image.dtype}.")
    if min(image.shape[:2]) < 1:
        raise InvalidArgument(f"The {what} is empty ({image.shape[1]}x{image.shape[0]}).")


def check_render_size(
    height: int, width: int, max_side: int | None, max_pixels: int | None, what: str = "render"
) -> None:
    """Refuse work above the caller's limits with ``ImageTooLarge`` (the server passes its settings)."""
    if max_side is not None and max(height, width) > max_side:
        raise ImageTooLarge(
            f"The {what} would be {width}x{height} px; the longest side allowed is {max_side} px."
        )
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLarge(
            f"The {what} would be {width}x{height} = {height * width / 1e6:.2f} megapixels; "
            f"the limit is {max_pixels / 1e6:.2f} megapixels."
        )


def check_positive(**values: float) -> None:
    """``InvalidArgument`` naming the first option that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise InvalidArgument(f"{name} must be positive, got {value}.")


def releasing_memory(fn: Callable[P, R]) -> Callable[P, R]:
    """Release what the frames of a failed run hold when ``fn`` raises.

    A propagating exception keeps its traceback, the traceback keeps every frame, and a frame keeps its
    locals and its function (with the function's closure cells): the image being optimised, the
    optimiser state, feature targets. A job manager that stores the exception would otherwise pin
    hundreds of MB after a cancel. Expected stops (``Cancelled``, ``DeadlineExceeded``, bad input: any
    ``AtelierError``) leave with their traceback cut at this call; anything else (a bug) keeps its stack
    for the log, with the locals of its finished frames cleared.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AtelierError as exc:
            raise exc.with_traceback(None) from exc.__cause__
        except BaseException as exc:
            traceback.clear_frames(exc.__traceback__)
            raise

    return wrapper


class Stepper:
    """Counts iterations across all stages of a run, honours the cancel token and reports progress.

    ``begin()`` is called before each iteration's work (so a cancel is honoured within one iteration),
    ``end()`` after it with the iteration's losses; a preview image is attached every ``preview_every``
    iterations and on the last one.
    """

    def __init__(
        self,
        total: int,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
        preview_every: int = 0,
    ) -> None:
        if preview_every < 0:
            raise InvalidArgument(f"preview_every must be >= 0, got {preview_every}.")
        self.total = total
        self.step = 0
        self.stage = ""
        self._progress = progress
        self._cancel = cancel
        self._preview_every = preview_every
        self._clock = ProgressClock(total)

    def begin(self) -> None:
        if self._cancel is not None:
            self._cancel.check()

    def wants_preview(self) -> bool:
        n = self._preview_every
        return n > 0 and self._progress is not None and (self.step % n == 0 or self.step == self.total)

    def end(self, losses: Mapping[str, float], image: Tensor | Callable[[], Tensor] | None = None) -> None:
        self.step += 1
        if self._progress is None:
            return
        self._clock.total = self.total  # a caller may learn the total as it goes (a lazy folder of images)
        preview = None
        if image is not None and self.wants_preview():
            preview = tensor_to_image(image() if callable(image) else image)
        self._progress(self._clock.report(self.step, dict(losses), self.stage, preview))


def _as_floats(terms: Mapping[str, Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items()}


def optimize_image(
    x: Tensor, objective: Objective, steps: int, method: str, lr: float, stepper: Stepper
) -> dict[str, float]:
    """Minimise ``objective(x)["total"]`` over the pixels of the leaf tensor ``x`` (kept in [0, 1]).

    L-BFGS (``torch.optim.LBFGS``; every closure evaluation counts as one iteration, as in neural-style)
    or Adam (the low-memory choice: no history of past gradients). Pixels are clamped to [0, 1] before
    each evaluation. Returns the losses of the last evaluation.
    """
    if method not in OPTIMIZERS:
        raise InvalidArgument(f"Unknown optimizer {method!r}; use one of {', '.join(OPTIMIZERS)}.")
    last: dict[str, float] = {}
    if method == "adam":
        adam = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            stepper.begin()
            adam.zero_grad(set_to_none=True)
            terms = objective(x)
            terms["total"].backward()
            adam.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
            last = _as_floats(terms)
            stepper.end(last, x)
        return last

    # Negative tolerances: run exactly ``steps`` evaluations instead of stopping on a flat stretch.
    lbfgs = torch.optim.LBFGS(
        [x],
        lr=lr,
        max_iter=steps,
        max_eval=steps,
        tolerance_grad=-1.0,
        tolerance_change=-1.0,
        history_size=100,
    )
    evaluations = 0

    def closure() -> Tensor:
        nonlocal last, evaluations
        stepper.begin()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        lbfgs.zero_grad(set_to_none=True)
        terms = objective(x)
        terms["total"].backward()
        last = _as_floats(terms)
        evaluations += 1
        stepper.end(last, x)
        return terms["total"]

    try:
        lbfgs.step(closure)
    except BaseException:
        # Empty the closure's cells: whoever keeps the traceback keeps ``closure`` and, through its
        # cells, the image, the optimiser's history and the loss targets.
        del x, lbfgs, objective
        raise
    with torch.no_grad():
        x.clamp_(0.0, 1.0)
    # L-BFGS can stop short (a NaN step, an exactly flat loss); keep the step count honest for progress.
    stepper.step += max(0, steps - evaluations)
    return last


def random_roll(x: Tensor, max_shift: int, rng: np.random.Generator) -> tuple[Tensor, tuple[int, int]]:
    """Circularly shift (B, C, H, W) by a random (dy, dx) in [-max_shift, max_shift] ("jitter")."""
    if max_shift <= 0:
        return x, (0, 0)
    dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3)), (dy, dx)


def unroll(x: Tensor, shift: tuple[int, int]) -> Tensor:
    return torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(2, 3))


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) with reflect padding (kernel radius 3 sigma)."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h = min(radius, x.shape[2] - 1)
    pad_w = min(radius, x.shape[3] - 1)
    # Truncate the kernel for images smaller than it, renormalised so a flat image stays flat.
    kh, kw = k[radius - pad_h : radius + pad_h + 1], k[radius - pad_w : radius + pad_w + 1]
    kh = (kh / kh.sum()).view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = (kw / kw.sum()).view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (0, 0, pad_h, pad_h), mode="reflect"), kh, groups=c)
    return F.conv2d(F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect"), kw, groups=c)


def seeded_noise(shape: tuple[int, ...], seed: int, device: torch.device, scale: float = 1.0) -> Tensor:
    """Reproducible uniform noise in [0.5 - scale/2, 0.5 + scale/2], drawn on the CPU then moved.

    Drawing on the CPU makes the same seed give the same start on every device.
    """
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(shape, generator=g) - 0.5) * scale + 0.5).to(device)
