"""Hot reload of the style models and the WCT levels (SIGHUP or ``POST /v1/admin/reload``) and version
pinning of calls.

A reload loads the whole models folder into a candidate engine in a thread (every model checked as at
start: sha256, the sanity probe, warm-up), decides what serves next with ``service.core.stylize.swap``
(a new version that fails keeps its old one serving), then swaps ``plane.engine`` on the event loop in
one assignment. The arbitrary-style levels load beside them and are taken whole or not at all
(``ArbitraryPath.swap_in``), reported under their model label (``custom``). Nothing that serves is modified: a call that started on the old engine holds it to the
end, and the old sessions go when the last such call does.

The micro-batcher is shared, and a request's batch may run after a swap, so its lane key names the engine
the request started with (``batch_key``): ``run_batch`` resolves the key back to that engine, and requests
from either side of a swap never share a run. Engines are looked up weakly: an entry lives exactly as long
as some call (or the plane) holds its engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.core.arbitrary.engine import MODEL_NAME as ARBITRARY
from service.core.errors import NotReady
from service.core.stylize.swap import Combined, combine
from service.server.metrics import Metrics
from service.server.plane.arbitrary import LevelsOutcome

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from service.core.stylize.engine import StyleEngine, StyleInfo
    from service.server.plane.config import PlaneConfig
    from service.server.plane.dataplane import DataPlane

log = logging.getLogger("atelier.models")
_SEP = "\n"  # between style name and engine id in a batch key (a manifest name holds no newline)


@dataclass(frozen=True)
class ReloadReport:
    """The outcome of one reload, for the log, the admin call's answer and the metric."""

    result: str  # success | partial | failure (atelier_model_reload_total{result})
    serving: dict[str, str]  # name -> version serving now
    loaded: dict[str, str]  # name -> version taken from the new load
    kept: dict[str, str]  # name -> why its new version was refused (its old one still serves)
    failed: dict[str, str]  # name -> why it could not load, with no old version to keep
    removed: tuple[str, ...]
    duration_s: float


class ServingModels:
    """The engines calls may still hold, by id, and the reload that swaps the plane's engine."""

    def __init__(self, config: PlaneConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._engines: weakref.WeakValueDictionary[int, StyleEngine] = weakref.WeakValueDictionary()
        self._running: asyncio.Task[ReloadReport] | None = None
        # Told after each reload (the server updates gRPC health: a reload can make an empty server ready).
        self.after_reload: list[Callable[[], Awaitable[None]]] = []

    # --- pinning a batched run to its engine ----------------------------------------------------------
    def register(self, engine: StyleEngine) -> None:
        self._engines[id(engine)] = engine

    def batch_key(self, engine: StyleEngine, style: str) -> str:
        self.register(engine)
        return f"{style}{_SEP}{id(engine)}"

    def resolve(self, key: str, current: StyleEngine | None) -> tuple[StyleEngine | None, str]:
        """(the engine the key names, or ``current`` if it is gone or the key names none; the style)."""
        style, sep, ident = key.rpartition(_SEP)
        if not sep:
            return current, key
        return self._engines.get(int(ident), current), style

    def run_batch(
        self,
        key: str,
        batch: list[np.ndarray],
        current: StyleEngine | None,
        weights: list[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        engine, style = self.resolve(key, current)
        assert engine is not None
        return engine.run_batch(style, batch, weights)

    # --- reload ---------------------------------------------------------------------------------------
    async def reload(self, plane: DataPlane) -> ReloadReport:
        """Load the models folder again and swap the result into ``plane.engine``. A reload asked for
        while one runs (SIGHUP and the admin call, or a client repeating the call) joins the running one
        instead of queueing another full load behind it."""
        if plane.engine is None:
            raise NotReady("The models are still loading; reload once the server is ready.")
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._reload(plane), name="reload-models")
        # shield: a caller that goes away (a client hanging up) never abandons a half-done swap
        report = await asyncio.shield(self._running)
        return report

    async def _reload(self, plane: DataPlane) -> ReloadReport:
        current = plane.engine
        assert current is not None
        start = time.monotonic()
        log.info("reloading the style models from %s", self.config.models_dir)
        candidate = await asyncio.to_thread(self._load)
        t = time.monotonic()
        levels = await asyncio.to_thread(plane.arbitrary.candidate)
        levels_s = time.monotonic() - t
        combined = combine(current, candidate)
        # One assignment on the event loop: every call sees the old engine or the new one, whole.
        plane.engine = combined.engine
        self.register(combined.engine)
        outcome = plane.arbitrary.swap_in(levels, levels_s)
        report = self._report(current, combined, time.monotonic() - start, outcome)
        for listener in self.after_reload:
            await listener()
        return report

    def _load(self) -> StyleEngine:
        from service.core.stylize.engine import StyleEngine

        c = self.config
        return StyleEngine.load(
            c.models_dir,
            providers=c.ort_providers,
            intra_threads=c.ort_intra_threads,
            inter_threads=c.ort_inter_threads,
            tile_threshold=c.tile_threshold,
            tile_size=c.tile_size,
            tile_overlap=c.tile_overlap,
            warmup=c.warmup,
        )

    def _report(
        self, old: StyleEngine, combined: Combined, duration_s: float, levels: LevelsOutcome
    ) -> ReloadReport:
        m = self.metrics
        new = combined.engine
        before = {i.name: i for i in old.models()}
        serving = {i.name: i for i in new.models()}
        m.allow_models([*serving, *(i.name for i in new.styles())])
        for name in combined.loaded:
            info = serving[name]
            m.model_load.labels(model=name).set(info.load_s)
            m.model_warmup.labels(model=name).set(info.warmup_s)
            previous = before.get(name)
            if previous is not None and _info_labels(previous) != _info_labels(info):
                with contextlib.suppress(KeyError):
                    m.model_info.remove(*_info_labels(previous))
            m.model_info.labels(*_info_labels(info)).set(1)
            if previous is None or previous.version != info.version:
                old_version = "new" if previous is None else f"was {previous.version}"
                log.info("reload: model %s now serves version %s (%s)", name, info.version, old_version)
        for name in combined.removed:
            with contextlib.suppress(KeyError):
                m.model_info.remove(*_info_labels(before[name]))
            log.info("reload: model %s removed (no longer in the manifest)", name)
        for name, why in {**combined.kept, **combined.failed}.items():
            m.model_load_failures.labels(model=name).inc()
            still = serving.get(name)
            keeps = f"; still serving version {still.version}" if still is not None else ""
            log.error("reload: model %s refused: %s%s", name, why, keeps)
        versions = {name: info.version for name, info in serving.items()}
        loaded, kept, failed = dict(combined.loaded), dict(combined.kept), dict(combined.failed)
        removed = combined.removed
        if levels.serving is not None:
            versions[ARBITRARY] = levels.serving
        if levels.loaded is not None:
            loaded[ARBITRARY] = levels.loaded
            log.info("reload: arbitrary style now serves levels %s", levels.loaded)
        refused = {"kept": levels.kept, "failed": levels.failed}
        for outcome, reason in refused.items():
            if reason is not None:
                # Counted per level in atelier_model_load_failures_total by ArbitraryPath.candidate.
                (kept if outcome == "kept" else failed)[ARBITRARY] = reason
                log.error("reload: arbitrary-style levels refused: %s", reason)
        if levels.removed:
            removed = (*removed, ARBITRARY)
            log.info("reload: arbitrary style removed (no levels in the manifest)")
        if not kept and not failed:
            result = "success"
        elif loaded or removed:
            result = "partial"
        else:
            result = "failure"
        m.model_reloads.labels(result=result).inc()
        log.info(
            "reload %s in %.2f s: %d serving, %d loaded, %d refused, %d removed",
            result,
            duration_s,
            len(versions),
            len(loaded),
            len(kept) + len(failed),
            len(removed),
        )
        return ReloadReport(result, versions, loaded, kept, failed, removed, round(duration_s, 3))


def _info_labels(info: StyleInfo) -> tuple[str, str, str, str, str]:
    return info.name, info.version, info.arch, info.provider, info.precision
