"""All Prometheus collectors of one server instance, on their own ``CollectorRegistry``.

A registry per instance (not the global default) so tests can run several servers in one process. Names
and labels are a contract with the dashboards and alert rules in deploy/ (docs/ARCHITECTURE.md lists them);
add new metrics freely, but never rename these.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service.server.jobs.job import ACTIVE_STATES, TERMINAL_STATES

# The ``model`` label of a request naming a model this server has not loaded: client strings never become
# label values (2000 random style names once made /metrics 106 MB).
UNKNOWN_MODEL = "unknown"

# Latency buckets from 5 ms (a small stylize on a GPU) to 10 min (a long Gatys render).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
RELOAD_RESULTS = ("success", "partial", "failure")  # the result label of atelier_model_reload_total


class Metrics:
    """The collectors; attribute names follow the metric names without the ``atelier_`` prefix."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._known_models: set[str] = set()
        r = self.registry
        self.request_duration = Histogram(
            "atelier_request_duration_seconds",
            "End-to-end request latency by transport, method, model and status code.",
            ("transport", "method", "model", "code"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests_in_flight = Gauge(
            "atelier_requests_in_flight", "Requests being handled now.", ("transport",), registry=r
        )
        self.errors = Counter(
            "atelier_errors_total",
            "Failed requests by transport, method and error reason.",
            ("transport", "method", "reason"),
            registry=r,
        )
        self.queue_wait = Histogram(
            "atelier_queue_wait_seconds",
            "Time from admission to the start of work, by queue (fast, jobs).",
            ("queue",),
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "atelier_queue_depth", "Requests or jobs waiting for a worker, by queue.", ("queue",), registry=r
        )
        self.inference_duration = Histogram(
            "atelier_inference_duration_seconds",
            "Model run time (one ONNX Runtime run per batch, or one PyTorch call), by model and provider.",
            ("model", "provider"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "atelier_batch_size",
            "Requests per ONNX Runtime run of the micro-batcher.",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.jobs = Gauge(
            "atelier_jobs", "Jobs by kind and state (queued, running).", ("kind", "state"), registry=r
        )
        self.jobs_finished = Counter(
            "atelier_jobs_finished_total",
            "Finished jobs by kind and final state.",
            ("kind", "state"),
            registry=r,
        )
        self.job_duration = Histogram(
            "atelier_job_duration_seconds",
            "Job run time (start to finish, without queueing), by kind.",
            ("kind",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_load = Gauge(
            "atelier_model_load_seconds", "Seconds to load each model.", ("model",), registry=r
        )
        self.model_warmup = Gauge(
            "atelier_model_warmup_seconds", "Seconds of each model's warm-up run.", ("model",), registry=r
        )
        self.model_info = Gauge(
            "atelier_model_info",
            "One series per loaded model (value 1) carrying its version, arch, provider and precision.",
            ("model", "version", "arch", "provider", "precision"),
            registry=r,
        )
        self.model_load_failures = Counter(
            "atelier_model_load_failures_total", "Models skipped at load, by model.", ("model",), registry=r
        )
        self.ready = Gauge("atelier_ready", "1 when models are loaded and warmed up, else 0.", registry=r)
        # Additions beyond the contract table (documented in docs/ARCHITECTURE.md).
        self.rejected = Counter(
            "atelier_rejected_total",
            "Requests refused by admission control (queue full), by queue.",
            ("queue",),
            registry=r,
        )
        self.requests_by_key = Counter(
            "atelier_requests_by_key_total",
            "Calls by API key name (never the key), method and status code; only when keys are configured.",
            ("key", "method", "code"),
            registry=r,
        )
        self.model_reloads = Counter(
            "atelier_model_reload_total",
            "Hot reloads of the models folder (SIGHUP, POST /v1/admin/reload) by result: success, partial "
            "(some new versions refused, their old ones still serve), failure (nothing changed).",
            ("result",),
            registry=r,
        )
        for result in RELOAD_RESULTS:
            self.model_reloads.labels(result=result)
        self.style_requests = Counter(
            "atelier_style_requests_total",
            "Fast stylize renders by model (the file that ran) and style: the style's name, 'blend' for a mix "
            "of styles; a masked call counts its two regions (an unstyled background is not counted).",
            ("model", "style"),
            registry=r,
        )
        self._prime()

    def _prime(self) -> None:
        """Create the label sets known up front so dashboards see zeros instead of missing series."""
        for queue in ("fast", "jobs"):
            self.queue_depth.labels(queue=queue).set(0)
            self.queue_wait.labels(queue=queue)
            self.rejected.labels(queue=queue)
        for transport in ("grpc", "rest"):
            self.requests_in_flight.labels(transport=transport).set(0)
        self.ready.set(0)

    def enable_shared_queue(self) -> None:
        """The shared queue's collectors (``ATELIER_QUEUE_URL`` set; API replicas and workers alike):
        read from Redis once a second by ``jobs/redis_monitor.py``, so every process tells the same."""
        if hasattr(self, "redis_queue_depth"):
            return
        r = self.registry
        self.redis_queue_depth = Gauge(
            "atelier_redis_queue_depth", "Jobs waiting in the shared Redis queue.", registry=r
        )
        self.redis_queue_oldest_age = Gauge(
            "atelier_redis_queue_oldest_age_seconds",
            "Seconds the oldest waiting job of the shared queue has waited (0 when none waits).",
            registry=r,
        )
        self.redis_workers = Gauge(
            "atelier_redis_workers", "Workers of the shared queue with a fresh heartbeat.", registry=r
        )
        self.job_attempts = Counter(
            "atelier_job_attempts_total",
            "Starts of a job attempt by kind (a lost worker's job starts again: more than one per job).",
            ("kind",),
            registry=r,
        )

    def allow_models(self, names: Iterable[str]) -> None:
        """Names the ``model`` label may take (the loaded styles and the backbones); others read unknown."""
        self._known_models.update(names)

    def model_label(self, name: str) -> str:
        """``name`` if it is a known model (or empty: a call that names none), else ``UNKNOWN_MODEL``."""
        return name if not name or name in self._known_models else UNKNOWN_MODEL

    def prime_job_kind(self, kind: str) -> None:
        # The state labels are the JobState values: atelier_jobs the active ones, *_finished the final ones.
        for state in ACTIVE_STATES:
            self.jobs.labels(kind=kind, state=state).set(0)
        for state in TERMINAL_STATES:
            self.jobs_finished.labels(kind=kind, state=state)
        self.job_duration.labels(kind=kind)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type, for GET /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
