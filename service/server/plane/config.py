"""The data plane's configuration as plain values, built once from ``Settings`` at start.

Plain values (no pydantic) so the data plane never reads the environment itself. There are no defaults
here: every value comes from a ``Settings`` (whose fields hold the only defaults), which also validates
it, so ``PlaneConfig.from_settings(Settings(job_workers=2))`` is how a test or a script builds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from service.core.imageio import ImageLimits
from service.server.jobs.redis_store import QueueConfig
from service.server.plane.admission import AdmissionLimits
from service.server.plane.features import FeatureConfig
from service.server.plane.slow_jobs import SlowConfig

if TYPE_CHECKING:
    from service.settings import Settings


@dataclass(frozen=True)
class PlaneConfig:
    models_dir: Path
    allow_no_models: bool  # ready with no style model loaded
    ort_providers: tuple[str, ...]
    ort_intra_threads: int
    ort_inter_threads: int
    tile_threshold: int
    tile_size: int
    tile_overlap: int
    warmup: bool  # warm-up runs before a model is listed (tests skip them for speed)
    limits: ImageLimits
    max_side_stylize: int
    max_side_slow: int
    admission: AdmissionLimits  # per-job caps: styles, input pixels, work
    device: str  # resolved: "cpu" or "cuda", never "auto"
    default_backbone: str
    backbone_weights: Mapping[str, str | Path | None]
    batch_max_size: int
    batch_max_delay_ms: float | None  # None: from the provider in use (batching.default_delay_ms)
    fast_workers: int
    fast_queue_limit: int
    job_workers: int  # the render pool (Gatys, DeepDream)
    job_queue_limit: int
    saliency_workers: int  # the saliency pool (service/server/jobs/pools.py)
    saliency_queue_limit: int
    job_grace_s: float  # SIGTERM: how long running jobs may still run (service/server/shutdown.py)
    job_max_runtime_s: float
    job_result_ttl_s: float
    job_result_max_count: int
    job_result_max_bytes: int
    jobs_per_key: int  # queued + running jobs one API key may hold (0: no cap; no keys: never applies)
    features: FeatureConfig  # gallery and embed limits
    queue: QueueConfig | None  # the shared Redis job queue; None: jobs run in this process

    @classmethod
    def from_settings(cls, s: Settings, *, warmup: bool = True) -> PlaneConfig:
        return cls(
            models_dir=s.models_dir,
            allow_no_models=s.allow_no_models,
            ort_providers=tuple(s.ort_providers),
            ort_intra_threads=s.ort_intra_threads,
            ort_inter_threads=s.ort_inter_threads,
            tile_threshold=s.tile_threshold,
            tile_size=s.tile_size,
            tile_overlap=s.tile_overlap,
            warmup=warmup,
            limits=s.image_limits(),
            max_side_stylize=s.max_side_stylize,
            max_side_slow=s.max_side_slow,
            admission=AdmissionLimits(s.max_gatys_styles, s.max_job_input_pixels, s.max_job_work_mpx),
            device=s.torch_device(),
            default_backbone=s.default_backbone,
            backbone_weights=s.backbone_weights(),
            batch_max_size=s.batch_max_size,
            batch_max_delay_ms=s.batch_max_delay_ms,
            fast_workers=s.fast_workers,
            fast_queue_limit=s.fast_queue_limit,
            job_workers=s.job_workers,
            job_queue_limit=s.job_queue_limit,
            saliency_workers=s.saliency_workers,
            saliency_queue_limit=s.saliency_queue_limit,
            job_grace_s=s.job_grace_s,
            job_max_runtime_s=s.job_max_runtime_s,
            job_result_ttl_s=s.job_result_ttl_s,
            job_result_max_count=s.job_result_max_count,
            job_result_max_bytes=s.job_result_max_bytes,
            jobs_per_key=s.jobs_per_key,
            features=FeatureConfig(s.max_galleries, s.max_gallery_items, s.max_embed_images),
            queue=queue_config(s),
        )

    def slow(self) -> SlowConfig:
        return SlowConfig(
            self.limits,
            self.max_side_slow,
            self.device,
            self.default_backbone,
            self.backbone_weights,
            self.admission,
        )


def queue_config(s: Settings) -> QueueConfig | None:
    """The shared queue's settings, or None when ``queue_url`` is empty (in-process jobs)."""
    if not s.queue_url:
        return None
    return QueueConfig(
        url=s.queue_url,
        max_attempts=s.queue_max_attempts,
        queue_limit=s.job_queue_limit,  # the same cap as in-process: renders waiting for a worker
        jobs_per_key=s.jobs_per_key,
        max_runtime_s=s.job_max_runtime_s,
        result_ttl_s=s.job_result_ttl_s,
    )
