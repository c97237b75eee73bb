"""The bookkeeping the training loops share (``stylize.train``, ``stylize.train_multi``,
``stylize.add_style``, ``arbitrary.train_decoder``).

Each loop owns its model, loss and checkpoint fields; this owns what is the same in all: refusing a
checkpoint that is finished or out of CPU budget, recording each step's loss terms, checkpointing every
``checkpoint_every`` steps, progress reports, stopping once the CPU budget (process time, counted across
resumes) is spent, and the final save with the mean of the last 50 steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from service.core.errors import InvalidArgument
from service.core.progress import ProgressCallback, ProgressClock


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash mid-write never leaves a truncated checkpoint."""
    tmp = path.with_suffix(".ckpt.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def resume_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any], lr: float) -> None:
    """Load a checkpoint's optimizer state, keeping this run's learning rate.

    ``Optimizer.load_state_dict`` restores the saved ``lr`` too, so without this a resumed run would
    silently ignore a new ``--lr`` (an annealing stage would train at the old rate)."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        group["lr"] = lr


class RunBudget(Protocol):
    """What ``StepBook`` reads of a run's config (``TrainConfig``, ``DecoderConfig``)."""

    steps: int
    checkpoint_every: int
    cpu_budget_s: float


class StepBook:
    """Per-step bookkeeping of one run from ``start`` to ``config.steps``, and its checkpoints.

    A checkpoint of step ``step`` is ``fields(step)`` (the run's own entries: model, optimiser, config ...) with the step, the
    loss history and the CPU seconds added, written atomically to ``ckpt_path``; ``after_save`` then runs
    (e.g. the loss curve)."""

    def __init__(
        self,
        config: RunBudget,
        *,
        ckpt_path: Path,
        start: int,
        keys: Sequence[str],
        history: list[dict[str, float]],
        fields: Callable[[int], dict[str, Any]],
        after_save: Callable[[], None] | None = None,
        cpu_before: float = 0.0,
        progress: ProgressCallback | None = None,
    ) -> None:
        steps, cpu_budget_s = config.steps, config.cpu_budget_s
        if start >= steps:
            raise InvalidArgument(f"Checkpoint {ckpt_path} is already at step {start} of {steps}.")
        if cpu_budget_s and cpu_before >= cpu_budget_s:
            raise InvalidArgument(f"Checkpoint {ckpt_path} has spent its CPU budget ({cpu_before:.0f} s).")
        self.start, self.steps, self.keys, self.history = start, steps, tuple(keys), history
        self.ckpt_path, self.fields, self.after_save = ckpt_path, fields, after_save
        self.checkpoint_every, self.progress = config.checkpoint_every, progress
        self.cpu_budget_s, self.cpu_before = cpu_budget_s, cpu_before
        self.clock = ProgressClock(steps - start)
        self.last = steps
        self.begin()

    def save(self, step: int) -> None:
        payload = {
            **self.fields(step),
            "step": step,
            "history": self.history,
            "cpu_seconds": self.cpu_seconds(),
        }
        save_atomic(payload, self.ckpt_path)
        if self.after_save is not None:
            self.after_save()

    def begin(self) -> None:
        """Start the clocks: call just before the first step, so setup (targets, losses) is not counted."""
        self.t0, self.cpu0 = time.monotonic(), time.process_time()

    def cpu_seconds(self) -> float:
        """Process CPU time of the run so far, resumes included (what a checkpoint records)."""
        return self.cpu_before + time.process_time() - self.cpu0

    def record(self, step: int, terms: Mapping[str, Tensor]) -> bool:
        """Book step ``step`` (0-based) with its loss terms; True when the CPU budget is spent (stop)."""
        row = {"step": float(step + 1), **{k: float(terms[k].detach()) for k in self.keys}}
        self.history.append(row)
        if self.checkpoint_every and (step + 1) % self.checkpoint_every == 0 and step + 1 < self.steps:
            self.save(step + 1)
        if self.progress is not None:
            self.progress(self.clock.report(step + 1 - self.start, {k: row[k] for k in self.keys}))
        if self.cpu_budget_s and self.cpu_seconds() >= self.cpu_budget_s:
            self.last = step + 1
            return True
        return False

    def finish(self) -> tuple[int, dict[str, float], float]:
        """The final save; (last step, mean of each term over the last 50 steps, wall seconds)."""
        self.save(self.last)
        tail = self.history[-50:]
        final = {k: float(np.mean([r.get(k, 0.0) for r in tail])) for k in self.keys}
        return self.last, final, time.monotonic() - self.t0
