"""``atelier serve``: the gRPC and HTTP servers in one process (see service/server/app.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from service.cli.common import settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve gRPC and REST (with /metrics) until SIGTERM")
    p.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default 50051; 0 = any free port)")
    p.add_argument(
        "--http-port", type=int, default=None, help="HTTP port for REST and /metrics (default 8080)"
    )
    p.add_argument("--host", default=None, help="address to listen on (default 0.0.0.0)")
    p.add_argument("--models-dir", type=Path, default=None, help="folder with manifest.json (default models)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from service.server.app import ServerOptions, serve_until_signal
    from service.server.auth.authenticator import Authenticator
    from service.server.plane.config import PlaneConfig
    from service.server.plane.dataplane import DataPlane

    settings = settings_from_args(
        args, grpc_port=args.grpc_port, http_port=args.http_port, host=args.host, models_dir=args.models_dir
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
    options = ServerOptions.from_settings(settings)  # checks the TLS files before anything loads
    auth = Authenticator.from_settings(settings)  # a malformed keys file refuses to start, naming the line
    plane = DataPlane(PlaneConfig.from_settings(settings))
    return asyncio.run(serve_until_signal(plane, options, auth=auth, cors_origins=settings.cors_origins))
