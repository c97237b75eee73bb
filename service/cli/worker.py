"""``atelier worker``: run the shared queue's Gatys, DeepDream and attack jobs apart from the API.

Needs ``ATELIER_QUEUE_URL`` (the Redis the API replicas use). Serves ``/metrics`` on ``--metrics-port``
(default 9102) for Prometheus and KEDA: the queue gauges, ``atelier_job_attempts_total`` and the job
metrics of the jobs it runs. SIGTERM or SIGINT drains it (``QueueWorker.drain``): running jobs get
``ATELIER_JOB_GRACE_S`` to finish, then go back to the queue for another worker; exit 0.
"""

from __future__ import annotations

import argparse

from service.cli.common import settings_from_args
from service.server.jobs.redis_store import DEFAULT_HEARTBEAT_S

DEFAULT_METRICS_PORT = 9102


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run shared-queue jobs (ATELIER_QUEUE_URL) until SIGTERM")
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at once (default 1)")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help=f"port of /metrics (default {DEFAULT_METRICS_PORT}; 0 = any free port)",
    )
    p.add_argument(
        "--heartbeat-s",
        type=float,
        default=DEFAULT_HEARTBEAT_S,
        help=f"silent this long, the worker counts as lost and its job runs elsewhere (default {DEFAULT_HEARTBEAT_S:g})",
    )
    p.add_argument("--host", default=None, help="address /metrics listens on (default: ATELIER_HOST)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import logging
    import signal
    import threading

    from prometheus_client import start_http_server

    from service.core.errors import InvalidArgument
    from service.server.jobs.redis_worker import QueueWorker
    from service.server.metrics import Metrics
    from service.server.plane.config import PlaneConfig
    from service.server.plane.loading import load_backbone_warm

    settings = settings_from_args(args)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("atelier.worker")
    if args.concurrency < 1 or args.heartbeat_s <= 0:
        raise InvalidArgument("--concurrency must be at least 1 and --heartbeat-s above 0.")
    config = PlaneConfig.from_settings(settings, warmup=False)
    if config.queue is None:
        raise InvalidArgument(
            "atelier worker needs ATELIER_QUEUE_URL (redis://host:port/db) to take jobs from."
        )
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
    metrics = Metrics()
    host = args.host or settings.host
    server, _ = start_http_server(args.metrics_port, addr=host, registry=metrics.registry)
    port = server.server_address[1]
    queue = dataclasses.replace(config.queue, heartbeat_s=args.heartbeat_s)
    worker = QueueWorker(
        queue, config.slow(), metrics, concurrency=args.concurrency, job_grace_s=settings.job_grace_s
    )
    load_backbone_warm(config, metrics)  # the first job does not pay for loading the backbone
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    metrics.ready.set(1)
    log.info(
        "worker %s ready: %d at once, queue %s on %s, metrics on %s:%d",
        worker.id, args.concurrency, config.queue.queue_name, config.queue.where(), host, port,
    )  # fmt: skip
    stop.wait()
    log.info("received a stop signal; draining")
    metrics.ready.set(0)
    worker.drain()
    server.shutdown()
    log.info("worker %s stopped", worker.id)
    return 0
