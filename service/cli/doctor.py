"""``atelier doctor``: versions, ONNX Runtime providers, the models folder and where each setting came from."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="versions, providers, models and settings (with their source)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return 0
