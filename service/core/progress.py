"""The progress and cancellation contract shared by every long-running algorithm.

An algorithm takes an optional ``CancelToken`` and an optional ``ProgressCallback``. It calls
``token.check()`` once per iteration (so cancellation is honoured within one iteration) and reports a
``Progress`` after each iteration. The token also carries an optional deadline (monotonic clock), so a
run-time cap needs no second mechanism.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.core.errors import Cancelled, DeadlineExceeded


class CancelToken:
    """Thread-safe cancel flag with an optional deadline.

    ``cancel()`` may be called from any thread (an event loop, a signal handler); the worker thread calls
    ``check()`` between iterations and gets ``Cancelled`` or ``DeadlineExceeded`` raised.
    """

    def __init__(self, deadline: float | None = None, timeout_s: float | None = None) -> None:
        self._event = threading.Event()
        self._reason = "cancelled"
        if timeout_s is not None:
            limit = time.monotonic() + timeout_s
            deadline = limit if deadline is None else min(deadline, limit)
        self.deadline = deadline  # time.monotonic() value, or None for no deadline

    def cancel(self, reason: str = "cancelled") -> None:
        self._reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def check(self) -> None:
        """Raise if cancelled or past the deadline; otherwise return at once."""
        if self._event.is_set():
            raise Cancelled(f"Work was cancelled ({self._reason}).")
        if self.expired():
            raise DeadlineExceeded("Work ran past its deadline and was stopped.")


@dataclass
class Progress:
    """One progress report. ``preview`` is an (H, W, 3) uint8 image when previews are requested."""

    step: int  # 1-based step within the whole run
    total: int  # total steps of the whole run (all stages)
    losses: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    eta_s: float | None = None
    stage: str = ""  # e.g. "scale 2/3 (512 px)" or "octave 1/4"
    preview: np.ndarray | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


class ProgressClock:
    """Measures elapsed time and a linear ETA for ``total`` steps."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()

    def report(
        self,
        step: int,
        losses: dict[str, float] | None = None,
        stage: str = "",
        preview: np.ndarray | None = None,
    ) -> Progress:
        elapsed = time.monotonic() - self.start
        eta = elapsed / step * (self.total - step) if step > 0 else None
        return Progress(
            step=step,
            total=self.total,
            losses=dict(losses or {}),
            elapsed_s=elapsed,
            eta_s=eta,
            stage=stage,
            preview=preview,
        )
