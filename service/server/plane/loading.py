"""Model loading at start: the style engine and the default backbone, each warmed up, with one log line
per model and the load/warm-up metrics."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from service.server.metrics import Metrics
from service.server.plane.config import PlaneConfig

if TYPE_CHECKING:
    from service.core.stylize.engine import StyleEngine

log = logging.getLogger("atelier.models")


def load_engine(config: PlaneConfig, metrics: Metrics) -> StyleEngine:
    """Load every model of ``config.models_dir`` (skipping broken ones, which are logged and counted)."""
    from service.core.stylize.engine import StyleEngine

    start = time.monotonic()
    engine = StyleEngine.load(
        config.models_dir,
        providers=config.ort_providers,
        intra_threads=config.ort_intra_threads,
        inter_threads=config.ort_inter_threads,
        tile_threshold=config.tile_threshold,
        tile_size=config.tile_size,
        tile_overlap=config.tile_overlap,
        warmup=config.warmup,
    )
    # The model label takes the models' names and the styles' (a gRPC call is labelled by the style it
    # names until it resolves); both lists come from the manifest, so the label stays bounded.
    metrics.allow_models([*(i.name for i in engine.models()), *(i.name for i in engine.styles())])
    for info in engine.models():
        metrics.model_load.labels(model=info.name).set(info.load_s)
        metrics.model_warmup.labels(model=info.name).set(info.warmup_s)
        metrics.model_info.labels(
            model=info.name,
            version=info.version,
            arch=info.arch,
            provider=info.provider,
            precision=info.precision,
        ).set(1)
        log.info(
            "model %s version %s (%s, %s) on %s: load %.2f s, warm-up %.2f s",
            info.name,
            info.version,
            info.arch,
            info.precision,
            info.provider,
            info.load_s,
            info.warmup_s,
        )
    log.info(
        "%d style models (%d styles) loaded in %.2f s",
        len(engine.models()),
        len(engine.styles()),
        time.monotonic() - start,
    )
    for name, why in engine.load_errors.items():
        metrics.model_load_failures.labels(model=name).inc()
        log.warning("skipped model %s: %s", name, why)
    if not engine.models():
        log.warning("no style models loaded from %s; Stylize will answer NOT_FOUND", config.models_dir)
    return engine


def load_backbone_warm(config: PlaneConfig, metrics: Metrics) -> None:
    """Load the default backbone and run one small classification so the first request is not cold."""
    from service.core.backbones import BACKBONES, get_backbone
    from service.core.classify import classify

    metrics.allow_models(BACKBONES)  # any of them may be asked for by name, loaded on first use
    name = config.default_backbone
    start = time.monotonic()
    net = get_backbone(name, config.device, config.backbone_weights)
    loaded = time.monotonic()
    classify(net, [np.full((64, 64, 3), 128, np.uint8)], 1)
    warm = time.monotonic()
    metrics.model_load.labels(model=name).set(loaded - start)
    metrics.model_warmup.labels(model=name).set(warm - loaded)
    metrics.model_info.labels(
        model=name, version="1", arch="backbone", provider=f"torch:{net.device}", precision="fp32"
    ).set(1)
    log.info(
        "loaded backbone %s on torch:%s in %.2f s (warm-up %.2f s)",
        name,
        net.device,
        loaded - start,
        warm - loaded,
    )
