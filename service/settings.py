"""All settings in one place, read once at start (``Settings()``), then passed down explicitly.

Every field can be set by an ``ATELIER_<FIELD>`` environment variable (e.g. ``ATELIER_GRPC_PORT=50052``)
or a ``.env`` file, and the CLI overrides some of them with flags. Nothing here is read at import time:
the core library never imports this module, it takes plain arguments. Where the core has a default of
its own (image limits, the style engine's threads and tiling), the field's default is that constant, so
no value is written twice; everything else is defaulted here only (``PlaneConfig`` and ``ServerOptions``
are built from a ``Settings``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.core.imageio import DEFAULT_LIMITS, ImageLimits
from service.core.stylize import engine

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATELIER_", env_file=".env", extra="ignore")

    # --- devices and threads ---------------------------------------------------------------------------
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device for the slow path")
    torch_threads: int = Field(0, ge=0, description="torch intra-op threads; 0 = torch's default")
    ort_intra_threads: int = Field(
        engine.DEFAULT_INTRA_THREADS, ge=0, description="ONNX Runtime intra-op threads; 0 = cores"
    )
    ort_inter_threads: int = Field(
        engine.DEFAULT_INTER_THREADS, ge=1, description="ONNX Runtime inter-op threads"
    )
    ort_providers: list[str] = Field(
        default_factory=lambda: list(engine.DEFAULT_PROVIDERS),
        description="ONNX Runtime provider preference order; the one actually used is reported",
    )

    # --- models ----------------------------------------------------------------------------------------
    models_dir: Path = Field(
        Path("models"), description="folder with manifest.json, .onnx files, model cards"
    )
    default_backbone: Literal["efficientnet_lite0", "vgg16", "vgg19"] = Field(
        "efficientnet_lite0", description="backbone for classify, saliency and renders when a call names none"
    )
    vgg16_weights: Path | None = Field(
        None, description="torchvision vgg16-397923af.pth; else torch hub cache"
    )
    vgg19_weights: Path | None = Field(
        None, description="torchvision vgg19-dcbb9e9d.pth; else torch hub cache"
    )
    allow_no_models: bool = Field(
        False, description="report ready with no style model loaded (else /readyz is 503 until one loads)"
    )

    # --- image limits ----------------------------------------------------------------------------------
    max_image_bytes: int = Field(DEFAULT_LIMITS.max_bytes, gt=0, description="largest encoded image accepted")
    max_image_pixels: int = Field(
        DEFAULT_LIMITS.max_pixels, gt=0, description="largest decoded image (checked on the header)"
    )
    max_side_stylize: int = Field(4096, gt=0, description="stylize input is downscaled to at most this side")
    tile_threshold: int = Field(
        engine.DEFAULT_TILE_THRESHOLD, gt=0, description="stylize images with a side above this are tiled"
    )
    tile_size: int = Field(
        engine.DEFAULT_TILE_SIZE, gt=0, description="side of the tiles a large stylize image is cut into"
    )
    tile_overlap: int = Field(
        engine.DEFAULT_TILE_OVERLAP, ge=0, description="pixels neighbouring tiles share, blended"
    )
    max_side_slow: int = Field(1024, gt=0, description="largest side accepted for Gatys/DeepDream/saliency")

    # --- admission: what one job may ask for (service/server/plane/admission.py, docs/limits.md) ---------
    max_gatys_styles: int = Field(4, ge=1, description="most style images in one Gatys request")
    max_job_input_pixels: int = Field(
        64_000_000, gt=0, description="most decoded pixels of all images of one job together"
    )
    max_job_work_mpx: float = Field(
        2000.0,
        gt=0,
        description="most estimated work of one job in megapixel-iterations (pixels x passes, e.g. steps)",
    )

    # --- servers ---------------------------------------------------------------------------------------
    host: str = Field("0.0.0.0", description="address both servers listen on")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 = any free port")
    http_port: int = Field(8080, ge=0, le=65535, description="REST and /metrics port; 0 = any free port")
    max_message_bytes: int = Field(32 * MiB, gt=0, description="gRPC max send/receive message size")
    grace_period_s: float = Field(
        10.0,
        ge=0,
        description="SIGTERM: the whole stop (calls and jobs drain, both ports) takes at most this",
    )
    job_grace_s: float = Field(
        5.0,
        ge=0,
        description="SIGTERM: running jobs get this long to finish (within grace_period_s), then are "
        "cancelled with the reason 'server shutting down'",
    )

    # --- TLS (service/server/tls.py) -------------------------------------------------------------------
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain); with tls_key, TLS on gRPC and HTTPS on REST"
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert (unencrypted)")
    tls_client_ca: Path | None = Field(
        None, description="PEM CA bundle; set: both servers require client certificates it signed (mTLS)"
    )

    # --- connection limits (service/server/sockets.py) -------------------------------------------------
    http_max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="largest HTTP request head (request line + headers); larger: 431"
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="an HTTP request head not complete this long after it starts: 408, closed"
    )
    http_keep_alive_s: int = Field(5, ge=1, description="idle HTTP keep-alive connections close after this")
    http_max_connections: int = Field(
        512, ge=0, description="open HTTP connections before new requests get 503; 0 = no cap"
    )
    grpc_keepalive_time_s: float = Field(
        60.0, gt=0, description="the server pings a gRPC client after this long without activity"
    )
    grpc_keepalive_timeout_s: float = Field(
        20.0, gt=0, description="a keepalive ping unanswered this long closes the gRPC connection"
    )
    grpc_keepalive_permit_without_calls: bool = Field(
        False, description="accept client keepalive pings on gRPC connections with no call open"
    )
    grpc_min_ping_interval_s: float = Field(
        10.0, gt=0, description="client pings closer together than this are strikes; 2 close the connection"
    )
    grpc_max_connection_idle_s: float = Field(
        300.0, ge=0, description="a gRPC connection with no call for this long is closed (GOAWAY); 0 = never"
    )
    grpc_max_connection_age_s: float = Field(
        0.0, ge=0, description="gRPC connections older than this get GOAWAY (calls finish); 0 = never"
    )

    # --- fast path (micro-batching) --------------------------------------------------------------------
    batch_max_size: int = Field(8, ge=1, description="most Stylize requests in one ONNX Runtime run")
    batch_max_delay_ms: float | None = Field(
        None,
        ge=0,
        description="how long a batch waits to fill; 0 disables batching; unset = 5 on CUDA, 0 on the CPU",
    )
    fast_workers: int = Field(1, ge=1, description="threads running fast-path batches")
    fast_queue_limit: int = Field(64, ge=1, description="queued Stylize requests before RESOURCE_EXHAUSTED")

    # --- slow path (jobs) ------------------------------------------------------------------------------
    job_workers: int = Field(1, ge=1, description="concurrent render jobs (Gatys, DeepDream)")
    job_queue_limit: int = Field(
        8, ge=0, description="render jobs waiting for a worker before RESOURCE_EXHAUSTED"
    )
    # Saliency has a pool of its own: a call takes seconds and waits for its answer, so it must not queue
    # behind renders that take minutes.
    saliency_workers: int = Field(1, ge=1, description="concurrent saliency calls (their own pool)")
    saliency_queue_limit: int = Field(
        8, ge=0, description="saliency calls waiting for a worker before RESOURCE_EXHAUSTED"
    )
    job_max_runtime_s: float = Field(600.0, gt=0, description="cap on one job's run time")
    job_result_ttl_s: float = Field(3600.0, gt=0, description="how long finished results are kept")
    job_result_max_count: int = Field(100, ge=1, description="most finished results kept")
    job_result_max_bytes: int = Field(256 * MiB, ge=1, description="most bytes of finished results kept")
    # --- the shared job queue (service/server/jobs/redis_*.py, `atelier worker`) -----------------------
    queue_url: str = Field(
        "",
        description="redis://host:port/db: Gatys, DeepDream and attack jobs go to a shared Redis queue run "
        "by `atelier worker` processes, seen and cancelled through any replica; empty = in-process jobs",
    )
    queue_max_attempts: int = Field(
        3, ge=1, description="shared queue: a job whose worker was lost this many times fails (else re-runs)"
    )
    # --- embeddings and galleries (service/server/plane/features.py) ---------------------------------
    max_galleries: int = Field(16, ge=1, description="named nearest-neighbour galleries the server keeps")
    max_gallery_items: int = Field(10_000, ge=1, description="images one gallery may hold")
    max_embed_images: int = Field(32, ge=1, description="images in one embed or gallery-add call")

    # --- access: API keys, per-key limits, CORS (service/server/auth/) ---------------------------------
    api_keys_file: Path | None = Field(
        None,
        description="file of name:sha256-of-key[:rps[:burst]] lines (atelier keys new); unset = open to all",
    )
    default_key_rps: float = Field(
        0.0, ge=0, description="requests per second of a key whose line names none; 0 = unlimited"
    )
    default_key_burst: int = Field(
        0, ge=0, description="burst of a key whose line names none; 0 = the rate rounded up (at least 1)"
    )
    jobs_per_key: int = Field(
        4, ge=0, description="queued + running slow jobs one API key may hold; 0 = no cap"
    )
    rate_limit_url: str = Field(
        "",
        description="redis://host:port/db: the API keys' rate limits shared by every replica through this "
        "Redis (GCRA; the local limits answer while it is down); empty = each process limits alone",
    )
    metrics_require_key: bool = Field(False, description="/metrics also needs an API key")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated origins allowed by CORS (e.g. https://a.example); empty = no CORS headers",
    )

    @field_validator("queue_url", "rate_limit_url")
    @classmethod
    def _check_redis_url(cls, value: str, info: ValidationInfo) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{info.field_name} must be a redis://, rediss:// or unix:// URL (or empty)")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # An environment variable is a comma-separated list (a JSON list is taken too).
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    # --- logging ---------------------------------------------------------------------------------------
    log_level: str = Field("INFO", description="logging level (DEBUG, INFO, WARNING, ...)")

    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)

    def backbone_weights(self) -> dict[str, str | Path | None]:
        return {"vgg16": self.vgg16_weights, "vgg19": self.vgg19_weights}

    def torch_device(self) -> str:
        """Resolve ``auto`` to ``cuda`` when a GPU is visible, else ``cpu``."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
