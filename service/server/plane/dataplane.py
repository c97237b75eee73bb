"""The data plane: the one object both transports (gRPC, REST) call.

Contract for the transports (keep stable; plain values in, dataclasses out, typed errors of
``service.core.errors`` raised, mapped to status codes by ``service.server.errors``):

``await plane.start()``                   load the style engine and the default backbone, warm up, then ready
``plane.ready -> bool``                   True between a successful start and the start of shutdown
``await plane.stylize(image, style, strength=1.0, preserve_color=False, max_side=None, fmt="png",
                      quality=90, deadline=None, *, blend=None, model=None, region=None)
                      -> StylizeResult``    fast path, micro-batched; a blend of a multi-style net's
                                          styles, and paint by region (``painting.py``)
``await plane.arbitrary.stylize(image, style_image, ...) -> StylizeResult``   any painting (WCT), unbatched
``plane.list_styles() -> list[StyleInfo]`` (``service.core.stylize.engine.StyleInfo``; each style of a
                                          multi-style net, ``net`` naming its model)
``await plane.classify(image, top_k=5, backbone=None, deadline=None) -> list[Prediction]``
``await plane.saliency(image, method, target=None, output="overlay", params=None, top_k=5,
                       backbone=None, deadline=None) -> SaliencyOutput``   runs as a job, awaited
``await plane.submit_gatys(content, styles, options, fmt="png", quality=90, backbone=None,
                           deadline=None) -> Job``
``await plane.submit_deepdream(image, options, fmt="png", quality=90, backbone=None, guide=None,
                               deadline=None) -> Job``
``plane.jobs``                            a ``JobQueue`` (get / cancel / subscribe / result): the render
                                          ``JobManager``, or with ``queue_url`` the shared Redis queue
``await plane.reload_models()``           hot reload of the models folder (``model_reload.py``)
``plane.metrics``                         the ``Metrics``; ``plane.track(transport, method)`` times a call
``await plane.close(grace_s)``            stop accepting, cancel jobs, release executors

``image`` arguments are encoded bytes; ``deadline`` is a ``time.monotonic()`` value (None: no deadline).
``owner`` (saliency and ``submit_*``): the caller's API key name, None without keys; ``plane.jobs.get(id,
owner)`` then finds only that key's jobs, and one key holds at most ``jobs_per_key`` jobs.
The ``submit_*`` methods decode and validate before creating the job, so bad input raises at once.
Queues are bounded: a full queue raises ``ResourceExhausted`` carrying ``retry_after_s``.
The blocking steps run in the executors (decode, encode, unbatched stylize) are in ``steps.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from service.core.errors import InvalidArgument, NotReady, ResourceExhausted, ShuttingDown
from service.core.imageio import MIME_TYPES, decode_image
from service.server.jobs.manager import Job
from service.server.jobs.pools import JobPools
from service.server.jobs.redis_monitor import SharedQueue
from service.server.jobs.work import JobQueue, queue_call
from service.server.metrics import Metrics
from service.server.plane.arbitrary import ArbitraryPath
from service.server.plane.batching import MicroBatcher, default_delay_ms
from service.server.plane.config import PlaneConfig
from service.server.plane.model_reload import ReloadReport, ServingModels
from service.server.plane.painting import BlendInput, Painter, Region, choose_styles, decode_with_mask
from service.server.plane.results import SaliencyOutput, StylizeResult
from service.server.plane.slow_jobs import deepdream_job, gatys_job, prepare_saliency
from service.server.plane.steps import check_output, fast_options, get_backbone_for
from service.server.plane.tracking import RequestScope, deadline_scope, track_call

if TYPE_CHECKING:
    from service.core.classify import Prediction
    from service.core.stylize.engine import StyleEngine, StyleInfo

log = logging.getLogger(__name__)
__all__ = ["DataPlane", "Region", "RequestScope", "SaliencyOutput", "StylizeResult"]
T = TypeVar("T")


class DataPlane:
    def __init__(self, config: PlaneConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self.engine: StyleEngine | None = None  # replaced whole by a hot reload (model_reload.py)
        self.models = ServingModels(config, self.metrics)
        self.arbitrary = ArbitraryPath(self)  # style-image calls (plane/arbitrary.py); loaded with the models
        self.painter = Painter(self)  # the renders of a fast call: a style, a blend, two by region
        self._ready = False
        self.drain_started = asyncio.Event()  # draining(): refuse new work; shared jobs' streams end
        self._fast_pending = 0  # admitted fast-path requests (the admission limit applies to this)
        self._upstream = 0  # of those, how many are still decoding (could still join a batch)
        self.fast_executor = ThreadPoolExecutor(config.fast_workers, thread_name_prefix="atelier-fast")
        # Decode/encode off the event loop but not behind inference in the fast executor.
        self.codec_executor = ThreadPoolExecutor(2, thread_name_prefix="atelier-codec")
        self.batcher = MicroBatcher(
            self._run_batch,
            self.fast_executor,
            max_size=config.batch_max_size,
            # Unset: off until the engine has loaded and its provider is known (_load sets the default).
            max_delay_s=(config.batch_max_delay_ms or 0.0) / 1000.0,
            observer=self._observe_batch,
            upstream=lambda: self._upstream,
        )
        self.pools = JobPools(config, self.metrics)  # renders and saliency, each sized on its own
        self.jobs: JobQueue = self.pools.renders
        self.shared: SharedQueue | None = None  # ATELIER_QUEUE_URL: renders go to Redis (jobs/redis_jobs.py)
        if config.queue is not None:
            self.shared = SharedQueue(config.queue, self.pools.renders, self.metrics)
            self.jobs = self.shared.jobs

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Started, not draining, and with something to serve (see ``not_ready_reason``)."""
        return self.not_ready_reason is None

    @property
    def not_ready_reason(self) -> str | None:
        """Why the plane is not ready (for /readyz, NotReady errors and the log); None when it is."""
        if self.drain_started.is_set():
            return "The server is shutting down; retry on another instance."
        if not self._ready or self.engine is None:
            return "The server is starting (models loading) or shutting down; retry shortly."
        if self.engine.models() or self.config.allow_no_models:
            return None
        # Loaded but empty (every model corrupt, a malformed manifest, no models folder): the process keeps
        # running so /healthz answers and the log explains, but it must not take traffic as if it served.
        skipped = sorted(self.engine.load_errors)
        listed = ", ".join(skipped[:8]) + (" ..." if len(skipped) > 8 else "")
        why = f" (skipped: {listed}; the server log says why)" if skipped else ""
        return (
            f"No style model is loaded{why}, so there is nothing to serve. Fix the models folder, or set "
            "ATELIER_ALLOW_NO_MODELS=true to serve without style models."
        )

    async def start(self) -> None:
        """Load and warm up the models in a worker thread, then mark the plane ready (when it has a model
        to serve, or ``allow_no_models``)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.fast_executor, self._load)
        self._ready = True
        self.metrics.ready.set(1 if self.ready else 0)

    def _load(self) -> None:
        from service.server.plane.loading import load_backbone_warm, load_engine

        self.engine = load_engine(self.config, self.metrics)
        self.models.register(self.engine)
        self.arbitrary.load()
        if self.config.batch_max_delay_ms is None:
            providers = sorted({s.provider for s in self.engine.models()})
            delay_ms = default_delay_ms(providers)
            self.batcher.set_max_delay(delay_ms / 1000.0)
            log.info(
                "micro-batching: %g ms wait (default for %s)", delay_ms, ", ".join(providers) or "no models"
            )
        load_backbone_warm(self.config, self.metrics)

    def draining(self) -> None:
        """Refuse new work (ShuttingDown) while calls already admitted finish; readiness goes false."""
        self.drain_started.set()
        self._ready = False
        self.metrics.ready.set(0)

    async def reload_models(self) -> ReloadReport:
        """Re-read the models folder; a new version replaces the old only once it passed every check."""
        if self.drain_started.is_set():
            raise ShuttingDown("The server is shutting down; it reloads nothing.")
        return await self.models.reload(self)

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop accepting work, cancel jobs (waiting up to ``grace_s`` for workers), release the executors."""
        self._ready = False
        self.metrics.ready.set(0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.pools.close, grace_s)
        if self.shared is not None:
            self.shared.close()  # its queued and running jobs stay in Redis, for the workers
        self.fast_executor.shutdown(wait=False, cancel_futures=True)
        self.codec_executor.shutdown(wait=False, cancel_futures=True)
        if self.engine is not None:
            self.engine.close()

    # --- request accounting ---------------------------------------------------------------------------
    def track(
        self, transport: str, method: str, model: str = ""
    ) -> AbstractAsyncContextManager[RequestScope]:
        """Time one call (``async with plane.track("rest", "Stylize", model) as scope``): in-flight gauge,
        latency by status code, errors by reason. Set ``scope.model`` once the model is known."""
        return track_call(self.metrics, transport, method, model)

    def _require_ready(self) -> StyleEngine:
        reason = self.not_ready_reason
        if reason is not None or self.engine is None:
            error = ShuttingDown if self.drain_started.is_set() else NotReady
            raise error(reason or "The server is starting.")
        return self.engine

    @asynccontextmanager
    async def _fast_slot(self) -> AsyncIterator[None]:
        if self._fast_pending >= self.config.fast_queue_limit:
            self.metrics.rejected.labels(queue="fast").inc()
            raise ResourceExhausted(
                f"The fast-path queue is full ({self._fast_pending} requests waiting).", retry_after_s=1.0
            )
        self._fast_pending += 1
        self.metrics.queue_depth.labels(queue="fast").set(self._fast_pending)
        try:
            yield
        finally:
            self._fast_pending -= 1
            self.metrics.queue_depth.labels(queue="fast").set(self._fast_pending)

    async def _in(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    # --- fast path ------------------------------------------------------------------------------------
    def list_styles(self) -> list[StyleInfo]:
        return self._require_ready().styles()

    async def stylize(
        self,
        image: bytes | np.ndarray,
        style: str | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        fmt: str | None = "png",
        quality: int = 90,
        deadline: float | None = None,
        *,
        blend: BlendInput | None = None,
        model: str | None = None,
        region: Region | None = None,
    ) -> StylizeResult:
        """``image``: encoded bytes, or an (H, W, 3) uint8 array (the v2 tensors, ``plane/inference.py``);
        ``fmt`` None: no encoding, the result's ``array`` holds the pixels (its ``image`` is empty).
        ``style`` or ``blend`` (a multi-style net's weights, ``model`` naming the net if need be), and
        ``region``: paint by a mask, another style outside it (``plane/painting.py``)."""
        from service.core.stylize.engine import StylizeOptions

        engine = self._require_ready()
        if fmt is not None:
            fmt, quality = check_output(fmt, quality)
        given = {"strength": strength, "preserve_color": preserve_color, "max_side": max_side}
        opts = fast_options(StylizeOptions, given, self.config.max_side_stylize)
        # UnknownModel (NOT_FOUND) listing the known styles, or a bad blend, before any work
        choices = choose_styles(engine, style, blend, model, region)
        async with deadline_scope(deadline), self._fast_slot():
            t0 = time.monotonic()
            self._upstream += 1
            try:
                prepared, mask = await self._in(
                    self.codec_executor, decode_with_mask, engine, image, opts, self.config, region
                )
            finally:
                self._upstream -= 1
            t1 = time.monotonic()
            saliency, mask_s = await self.painter.mask(choices, prepared)
            out, data, took, batch = await self.painter.paint(
                engine, prepared, mask if saliency is None else saliency, choices, opts, fmt, quality
            )
            t3 = time.monotonic()
        self.metrics.queue_wait.labels(queue="fast").observe(took["queue"])
        timings = {
            "decode": (t1 - t0) * 1e3,
            **({"mask": mask_s * 1e3} if saliency is not None else {}),
            "queue": took["queue"] * 1e3,
            "inference": took["inference"] * 1e3,
            "encode": took["encode"] * 1e3,
            "total": (t3 - t0) * 1e3,
        }
        h, w = out.shape[:2]
        mime = MIME_TYPES[fmt] if fmt else "application/octet-stream"
        fg = choices.foreground
        net = engine.info(fg.net)
        return StylizeResult(
            data, mime, fg.net, net.version, net.provider, timings, w, h, batch, out,
            style=fg.style, background=choices.background_label,
        )  # fmt: skip

    def _run_batch(
        self, key: str, batch: list[np.ndarray], weights: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        return self.models.run_batch(key, batch, self.engine, weights)

    def _observe_batch(self, key: str, size: int, run_s: float) -> None:
        engine, model = self.models.resolve(key, self.engine)
        provider = engine.info(model).provider if engine is not None else ""
        self.metrics.batch_size.labels(model=model).observe(size)
        self.metrics.inference_duration.labels(model=model, provider=provider).observe(run_s)

    async def classify(
        self, image: bytes, top_k: int = 5, backbone: str | None = None, deadline: float | None = None
    ) -> list[Prediction]:
        from service.core.classify import classify

        self._require_ready()
        if not 1 <= top_k <= 1000:
            raise InvalidArgument(f"top_k must be between 1 and 1000, got {top_k}.")
        cfg = self.config.slow()
        async with deadline_scope(deadline), self._fast_slot():
            img = await self._in(self.codec_executor, decode_image, image, self.config.limits)
            net = await self._in(self.fast_executor, get_backbone_for, cfg, backbone)
            start = time.monotonic()
            preds = await self._in(self.fast_executor, classify, net, [img], top_k)
            self.metrics.inference_duration.labels(model=net.name, provider=f"torch:{net.device}").observe(
                time.monotonic() - start
            )
        return preds[0]

    # --- slow path ------------------------------------------------------------------------------------
    async def saliency(
        self,
        image: bytes,
        method: str,
        target: int | str | None = None,
        output: str = "overlay",
        params: dict[str, Any] | None = None,
        top_k: int = 5,
        backbone: str | None = None,
        deadline: float | None = None,
        owner: str | None = None,
    ) -> SaliencyOutput:
        """A saliency map; runs on the job workers (some methods take seconds) and waits for the result."""
        self._require_ready()
        fn = await self._in(
            self.codec_executor,
            prepare_saliency,
            self.config.slow(),
            image,
            method,
            target,
            output,
            params,
            top_k,
            backbone,
        )
        async with deadline_scope(deadline):  # its own pool: renders never hold a saliency call back
            out = await self.pools.call(self.pools.saliency, "saliency", fn, deadline, owner)
        x = out.extra
        return SaliencyOutput(
            out.data,
            out.content_type,
            out.width,
            out.height,
            x["method"],
            x["target"],
            x["predictions"],
            x["map"],
        )

    async def submit_gatys(
        self,
        content: bytes,
        styles: list[bytes],
        options: dict[str, Any] | None = None,
        fmt: str = "png",
        quality: int = 90,
        backbone: str | None = None,
        deadline: float | None = None,
        owner: str | None = None,
    ) -> Job:
        self._require_ready()
        fmt, quality = check_output(fmt, quality)
        work = await self._in(
            self.codec_executor,
            gatys_job,
            self.config.slow(),
            content,
            styles,
            options,
            fmt,
            quality,
            backbone,
        )
        return await queue_call(self.jobs, self.jobs.submit_work, work, deadline, owner)

    async def submit_deepdream(
        self,
        image: bytes,
        options: dict[str, Any] | None = None,
        fmt: str = "png",
        quality: int = 90,
        backbone: str | None = None,
        guide: bytes | None = None,
        deadline: float | None = None,
        owner: str | None = None,
    ) -> Job:
        self._require_ready()
        fmt, quality = check_output(fmt, quality)
        work = await self._in(
            self.codec_executor,
            deepdream_job,
            self.config.slow(),
            image,
            options,
            fmt,
            quality,
            backbone,
            guide,
        )
        return await queue_call(self.jobs, self.jobs.submit_work, work, deadline, owner)
