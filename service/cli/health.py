"""``atelier health [--target HOST:PORT] [--live]``: ask a running server's gRPC health check; exit 0 when
SERVING (with ``--live``: whenever it answers).

The one command that calls a server (the others run the library locally), so it carries the connection
options every client needs: ``--tls-ca`` (trust this CA; TLS on), ``--tls-cert`` / ``--tls-key`` (a client
certificate, for a server with ``ATELIER_TLS_CLIENT_CA``) and ``--api-key``. It is also the probe for a
TLS deployment, where Kubernetes' own gRPC probe cannot connect (it speaks plaintext only); see
``deploy/k8s/overlays/tls``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

API_KEY_ENV = "ATELIER_API_KEY"  # read when --api-key is not given, so a key stays out of `ps` output


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """The flags of a command that calls a server: target, TLS files and API key."""
    parser.add_argument(
        "--target", default="localhost:50051", help="the server's gRPC address (default localhost:50051)"
    )
    parser.add_argument("--tls-ca", type=Path, default=None, help="PEM CA to trust; turns TLS on")
    parser.add_argument(
        "--tls-cert", type=Path, default=None, help="PEM client certificate (mTLS; needs --tls-key)"
    )
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM key of --tls-cert")
    parser.add_argument(
        "--api-key", default=None, help=f"API key sent as a Bearer token (default: ${API_KEY_ENV})"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="check a running server's health (exit 0 when serving)")
    add_connection_args(p)
    p.add_argument(
        "--live",
        action="store_true",
        help="exit 0 whenever the server answers, even NOT_SERVING (loading, draining): a liveness probe",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.client import AtelierClient, AtelierClientError

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    key = args.api_key or os.environ.get(API_KEY_ENV) or None
    with AtelierClient(
        args.target,
        timeout=args.timeout,
        api_key=key,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    ) as client:
        try:
            status = client.health()
        except AtelierClientError as exc:
            print(f"atelier: {args.target}: {exc.code.name}: {exc.message}", file=sys.stderr)
            return 1
    print(status)
    return 0 if status == "SERVING" or args.live else 1
