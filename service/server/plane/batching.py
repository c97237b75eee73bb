"""Micro-batching of fast-path inference: concurrent requests for the same model and the same input size
share one ONNX Runtime run.

Design (after Ray Serve's ``serve/batching.py``): one asyncio lane per key ``(model, height, width)``; a
request puts ``(input, future)`` on its lane's queue and awaits the future. The lane's task takes the first
waiting request, then keeps collecting until the batch holds ``max_size`` requests or ``max_delay_s`` has
passed since that first request, and runs the whole batch with one executor call. Every request gets its
own future: its own output, or, if the batch run fails, the batch's exception (bad images never get this
far: they are rejected while decoding, before they join a lane).

A multi-style net's requests carry their style weights (``cond``, one (S,) row each): requests of different
styles or blends of one net share a run, each row with its own weights (``run_batch(model, images,
conds)``); requests without weights are run as ``run_batch(model, images)``.

Only inputs with identical prepared (H, W) share a lane. Padding or resizing to size buckets would let more
requests batch together but would change each image's result (instance norm statistics, border effects),
so exact-size batching is the price of outputs that match the unbatched engine bit for bit.

The wait is only paid when it can help: a batch stops waiting as soon as no other admitted request is
still upstream (being decoded and prepared), since nothing else could join it before the deadline. A lone
request under light load therefore runs at once; under concurrent load batches fill while the executor is
busy with the previous one.

A lane whose queue is empty after a run ends its task; the next request starts a new one, so idle sizes cost
nothing. Requests whose caller went away (future cancelled) while waiting are dropped before the run.
``max_delay_s = 0`` disables batching: every request runs alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

_WAIT_SLICE_S = 0.001
# ONNX Runtime providers that run on an accelerator, where one batched run costs little more than a single
# image, so waiting for a batch pays. On the CPU a batch of N costs about N single runs, and the wait only
# adds latency: 16 REST clients at 512 px got 7.0 req/s (p50 2.2 s) with a 5 ms wait against 10.9 req/s
# (p50 1.4 s) without; docs/bench/batching_cpu.md has the measurements.
ACCELERATED_PROVIDERS = frozenset(
    {"CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider"}
)
ACCELERATED_DELAY_MS = 5.0


def default_delay_ms(providers: Iterable[str]) -> float:
    """The batch wait when none is configured: ``ACCELERATED_DELAY_MS`` if any model runs on an accelerator
    provider, else 0 (batching off)."""
    return ACCELERATED_DELAY_MS if any(p in ACCELERATED_PROVIDERS for p in providers) else 0.0


# run_batch(model, images) or, when the requests carry style weights, run_batch(model, images, conds)
RunBatch = Callable[..., list[np.ndarray]]


@dataclass(frozen=True)
class BatchResult:
    """One request's output plus how it was run (for timing breakdowns and metrics)."""

    output: np.ndarray
    batch_size: int
    queue_wait_s: float  # from submit to the start of the run
    run_s: float  # the batch's executor run time (shared by its requests)


@dataclass
class _Item:
    image: np.ndarray
    future: asyncio.Future[BatchResult]
    enqueued: float
    cond: np.ndarray | None = None  # a multi-style net's (S,) style weights for this image


class _Lane:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


BatchObserver = Callable[[str, int, float], None]  # (model, batch size, run seconds)


class MicroBatcher:
    """Groups same-model, same-size requests into one ``run_batch(model, images)`` call on ``executor``."""

    def __init__(
        self,
        run_batch: RunBatch,
        executor: Executor,
        *,
        max_size: int,
        max_delay_s: float,
        observer: BatchObserver | None = None,
        upstream: Callable[[], int] | None = None,
    ) -> None:
        """``upstream()`` counts requests admitted but not yet submitted (None: always wait the full delay)."""
        if max_size < 1 or max_delay_s < 0:
            raise ValueError("max_size must be >= 1 and max_delay_s >= 0")
        self.run_batch = run_batch
        self.executor = executor
        self._max_size = max_size
        self.max_size = max_size if max_delay_s > 0 else 1
        self.max_delay_s = max_delay_s
        self.observer = observer
        self.upstream = upstream
        self._lanes: dict[tuple[str, int, int], _Lane] = {}

    @property
    def enabled(self) -> bool:
        return self.max_size > 1

    def set_max_delay(self, max_delay_s: float) -> None:
        """Change the wait (the data plane sets the provider's default once the engine has loaded)."""
        if max_delay_s < 0:
            raise ValueError("max_delay_s must be >= 0")
        self.max_delay_s = max_delay_s
        self.max_size = self._max_size if max_delay_s > 0 else 1

    async def submit(self, model: str, image: np.ndarray, cond: np.ndarray | None = None) -> BatchResult:
        """Run ``image`` through ``model`` (batched with concurrent same-size requests) and return its output.
        ``cond``: the image's style weights for a multi-style net (rows of one batch may differ)."""
        loop = asyncio.get_running_loop()
        key = (model, int(image.shape[0]), int(image.shape[1]))
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        future: asyncio.Future[BatchResult] = loop.create_future()
        lane.queue.put_nowait(_Item(image, future, time.monotonic(), cond))
        if lane.task is None:
            lane.task = asyncio.create_task(self._drain(key, lane), name=f"batch-{key}")
        return await future

    async def _collect(self, lane: _Lane) -> list[_Item]:
        first = await lane.queue.get()
        batch = [first]
        if self.max_size > 1:
            close_at = first.enqueued + self.max_delay_s
            while len(batch) < self.max_size:
                if not lane.queue.empty():
                    batch.append(lane.queue.get_nowait())
                    continue
                remaining = close_at - time.monotonic()
                if remaining <= 0 or (self.upstream is not None and self.upstream() == 0):
                    break
                try:  # short slices, so the upstream check above is repeated while waiting
                    batch.append(await asyncio.wait_for(lane.queue.get(), min(remaining, _WAIT_SLICE_S)))
                except TimeoutError:
                    continue
        return [item for item in batch if not item.future.done()]  # callers that went away are dropped

    async def _drain(self, key: tuple[str, int, int], lane: _Lane) -> None:
        model = key[0]
        loop = asyncio.get_running_loop()
        try:
            while not lane.queue.empty():
                batch = await self._collect(lane)
                if not batch:
                    continue
                start = time.monotonic()
                images = [item.image for item in batch]
                conds = [item.cond for item in batch]
                args = (model, images, conds) if any(c is not None for c in conds) else (model, images)
                try:
                    outputs = await loop.run_in_executor(self.executor, self.run_batch, *args)
                    if len(outputs) != len(batch):
                        raise RuntimeError(
                            f"run_batch returned {len(outputs)} outputs for {len(batch)} inputs"
                        )
                except BaseException as exc:  # every request of a failed batch gets the batch's error
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                run_s = time.monotonic() - start
                if self.observer is not None:
                    self.observer(model, len(batch), run_s)
                for item, out in zip(batch, outputs, strict=True):
                    if not item.future.done():
                        item.future.set_result(BatchResult(out, len(batch), start - item.enqueued, run_s))
        finally:
            # No await between the emptiness check above and here, so no request can slip in unseen.
            lane.task = None
            if lane.queue.empty():
                self._lanes.pop(key, None)
            else:  # cancelled with requests waiting (shutdown): fail them rather than leave them hanging
                while not lane.queue.empty():
                    item = lane.queue.get_nowait()
                    if not item.future.done():
                        item.future.cancel()
