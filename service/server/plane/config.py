"""The data plane's configuration as plain values, built once from ``Settings`` at start.

Kept separate from ``service.settings`` so the data plane can be built in tests (and on machines without
pydantic-settings) from explicit values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from service.core.imageio import ImageLimits
from service.server.plane.slow_jobs import SlowConfig

if TYPE_CHECKING:
    from service.settings import Settings


@dataclass(frozen=True)
class PlaneConfig:
    models_dir: Path = Path("models")
    ort_providers: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
    ort_intra_threads: int = 0
    ort_inter_threads: int = 1
    tile_threshold: int = 1536
    tile_size: int = 1024
    tile_overlap: int = 64
    warmup: bool = True
    limits: ImageLimits = field(default_factory=ImageLimits)
    max_side_stylize: int = 4096
    max_side_slow: int = 1024
    device: str = "cpu"
    default_backbone: str = "efficientnet_lite0"
    backbone_weights: Mapping[str, str | Path | None] = field(default_factory=dict)
    batch_max_size: int = 8
    batch_max_delay_ms: float = 5.0
    fast_workers: int = 1
    fast_queue_limit: int = 64
    job_workers: int = 1
    job_queue_limit: int = 8
    job_max_runtime_s: float = 600.0
    job_result_ttl_s: float = 3600.0
    job_result_max_count: int = 100
    job_result_max_bytes: int = 256 * 1024 * 1024

    @classmethod
    def from_settings(cls, s: Settings, **overrides: object) -> PlaneConfig:
        values: dict[str, object] = dict(
            models_dir=s.models_dir,
            ort_providers=tuple(s.ort_providers),
            ort_intra_threads=s.ort_intra_threads,
            ort_inter_threads=s.ort_inter_threads,
            tile_threshold=s.tile_threshold,
            tile_size=s.tile_size,
            tile_overlap=s.tile_overlap,
            limits=s.image_limits(),
            max_side_stylize=s.max_side_stylize,
            max_side_slow=s.max_side_slow,
            device=s.torch_device(),
            default_backbone=s.default_backbone,
            backbone_weights=s.backbone_weights(),
            batch_max_size=s.batch_max_size,
            batch_max_delay_ms=s.batch_max_delay_ms,
            fast_workers=s.fast_workers,
            fast_queue_limit=s.fast_queue_limit,
            job_workers=s.job_workers,
            job_queue_limit=s.job_queue_limit,
            job_max_runtime_s=s.job_max_runtime_s,
            job_result_ttl_s=s.job_result_ttl_s,
            job_result_max_count=s.job_result_max_count,
            job_result_max_bytes=s.job_result_max_bytes,
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def slow(self) -> SlowConfig:
        return SlowConfig(
            self.limits, self.max_side_slow, self.device, self.default_backbone, self.backbone_weights
        )
