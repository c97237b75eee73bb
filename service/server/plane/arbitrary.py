"""Style-image calls of the data plane: ``plane.arbitrary.stylize(image, style_image, ...)``, arbitrary
style transfer (WCT, ``service.core.arbitrary.engine``) beside the named styles.

The same admission as a named style (the fast queue's slot and limit, the call's deadline, the setting
``max_side_stylize``, the options parser), and both images go through ``decode_image`` with the server's
image limits, so a hostile or oversized painting is refused exactly like a hostile photo. The painting's
statistics are cached by the sha256 of its bytes and the style size (the engine's bounded LRU): a repeat
decodes nothing of the painting. Runs are not micro-batched (each painting has its own transform).
Metrics use the model label ``custom`` whatever the painting, so label cardinality stays bounded.
Loaded at start; a hot reload (``model_reload.py``) loads the levels again and takes them whole or not at
all (``swap_in``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.core.errors import NotInstalled
from service.core.imageio import MIME_TYPES, decode_image, encode_image
from service.server.plane.results import StylizeResult
from service.server.plane.steps import check_output, decode_prepare, fast_options
from service.server.plane.tracking import deadline_scope

if TYPE_CHECKING:
    from service.core.arbitrary.cache import StyleStats
    from service.core.arbitrary.engine import ArbitraryOptions, ArbitraryStyleEngine
    from service.server.plane.dataplane import DataPlane

log = logging.getLogger("atelier.models")


@dataclass(frozen=True)
class LevelsOutcome:
    """What a reload did to the WCT levels (merged into its ``ReloadReport`` under their model label)."""

    serving: str | None = None  # the version serving after the reload
    loaded: str | None = None  # the new version, when it changed
    kept: str | None = None  # why the new set was refused (the old one still serves)
    failed: str | None = None  # what failed to load with no old set to keep
    removed: bool = False  # the folder lists no levels any more


class ArbitraryPath:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.engine: ArbitraryStyleEngine | None = None

    def candidate(self) -> ArbitraryStyleEngine:
        """The WCT levels of the models folder, loaded (blocking: run it in a thread); nothing is swapped."""
        from service.core.arbitrary.engine import ArbitraryStyleEngine

        c = self.plane.config
        engine = ArbitraryStyleEngine.load(
            c.models_dir,
            providers=c.ort_providers,
            intra_threads=c.ort_intra_threads,
            inter_threads=c.ort_inter_threads,
            tile_threshold=c.tile_threshold,
            tile_size=c.tile_size,
            tile_overlap=c.tile_overlap,
        )
        for name, why in engine.load_errors.items():
            self.plane.metrics.model_load_failures.labels(model=name).inc()
            log.warning("skipped arbitrary-style level %s: %s", name, why)
        return engine

    def load(self) -> None:
        """Load the WCT levels of the models folder (none installed is fine: calls then say so)."""
        start = time.monotonic()
        self.engine = self.candidate()
        self._announce(self.engine, time.monotonic() - start)

    def _announce(self, engine: ArbitraryStyleEngine, load_s: float) -> None:
        from service.core.arbitrary.engine import MODEL_NAME

        if engine.installed:
            self.plane.metrics.allow_models([MODEL_NAME])
            self.plane.metrics.model_load.labels(model=MODEL_NAME).set(load_s)
            log.info("arbitrary style (WCT) %s on %s", engine.version, engine.provider)

    def swap_in(self, new: ArbitraryStyleEngine, load_s: float) -> LevelsOutcome:
        """A reload's levels, taken whole or not at all: the levels paint one picture together, so a set
        with a level that failed to load keeps the old set serving when there is one (as a named style's
        failed new version keeps its old one). Calls that hold the old engine finish on it."""
        old = self.engine
        was = old.version if old is not None and old.installed else None
        if new.load_errors and was is not None:
            why = "; ".join(f"{k}: {v}" for k, v in sorted(new.load_errors.items()))
            return LevelsOutcome(serving=was, kept=why)
        self.engine = new
        self._announce(new, load_s)
        failed = "; ".join(f"{k}: {v}" for k, v in sorted(new.load_errors.items())) or None
        if not new.installed:
            return LevelsOutcome(removed=was is not None, failed=failed)
        loaded = new.version if new.version != was else None
        return LevelsOutcome(serving=new.version, loaded=loaded, failed=failed)

    def _engine(self) -> ArbitraryStyleEngine:
        from service.core.arbitrary.engine import NOT_INSTALLED

        self.plane._require_ready()  # starting or draining first: NotReady / ShuttingDown, as for a name
        if self.engine is None or not self.engine.installed:
            raise NotInstalled(NOT_INSTALLED)
        return self.engine

    async def stylize(
        self,
        image: bytes | np.ndarray,
        style_image: bytes | np.ndarray,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        style_size: int | None = None,
        fmt: str | None = "png",
        quality: int = 90,
        deadline: float | None = None,
    ) -> StylizeResult:
        """``image`` stylised with the painting ``style_image`` (encoded bytes, or (H, W, 3) uint8 pixels
        within the image limits: KServe v2's STYLE_IMAGE); as ``plane.stylize``."""
        from service.core.arbitrary.engine import MODEL_NAME, ArbitraryOptions

        plane, engine = self.plane, self._engine()
        if fmt is not None:
            fmt, quality = check_output(fmt, quality)
        given: dict[str, object] = {
            "strength": strength,
            "preserve_color": preserve_color,
            "max_side": max_side,
        }
        if style_size is not None:
            given["style_size"] = style_size
        opts = fast_options(ArbitraryOptions, given, plane.config.max_side_stylize)
        async with deadline_scope(deadline), plane._fast_slot():
            t0 = time.monotonic()
            prepared = await plane._in(
                plane.codec_executor, decode_prepare, engine.base, image, opts, plane.config
            )
            t1 = time.monotonic()
            stats, hit = await plane._in(plane.fast_executor, self._style, engine, style_image, opts)
            t2 = time.monotonic()
            runs: list[float] = []
            out = await plane._in(
                plane.fast_executor,
                lambda: engine.stylize(prepared, stats, opts, on_run=lambda n, s: runs.append(s)),
            )
            t3 = time.monotonic()
            data = await plane._in(plane.codec_executor, encode_image, out, fmt, quality) if fmt else b""
            t4 = time.monotonic()
        if runs:
            plane.metrics.inference_duration.labels(model=MODEL_NAME, provider=engine.provider).observe(
                sum(runs)
            )
        timings = {
            "decode": (t1 - t0) * 1e3,
            "style": (t2 - t1) * 1e3,  # the painting's statistics: ~0 on a cache hit
            "inference": (t3 - t2) * 1e3,
            "encode": (t4 - t3) * 1e3,
            "total": (t4 - t0) * 1e3,
        }
        h, w = out.shape[:2]
        mime = MIME_TYPES[fmt] if fmt else "application/octet-stream"
        return StylizeResult(
            data, mime, MODEL_NAME, engine.version, engine.provider, timings, w, h, 1, out, hit
        )

    def _style(
        self, engine: ArbitraryStyleEngine, data: bytes | np.ndarray, opts: ArbitraryOptions
    ) -> tuple[StyleStats, bool]:
        """The painting's statistics by the sha256 of its bytes (of its shape and pixels for an array);
        decoded (under the limits) only on a miss."""
        limits = self.plane.config.limits
        if isinstance(data, np.ndarray):  # pixels, already checked against the limits by their caller
            pixels = np.ascontiguousarray(data, dtype=np.uint8)
            digest = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
            return engine.style_stats(digest, opts.style_size, lambda: pixels)
        if len(data) > limits.max_bytes:  # refused with the numbers before any hashing
            decode_image(data, limits)
        digest = hashlib.sha256(data).hexdigest()
        return engine.style_stats(digest, opts.style_size, lambda: decode_image(data, limits))
