"""The ``atelier`` command line. Each command group lives in its own module with a ``register`` function.

Errors print one line to stderr and exit non-zero; ``ATELIER_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from service import __version__
from service.core.errors import AtelierError

# Modules under service.cli that define ``register(subparsers)``; order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = ("classify", "serve", "train", "stylize", "render", "saliency")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atelier",
        description="Neural style transfer and CNN visualisation: serve, train, render, explain.",
    )
    parser.add_argument("--version", action="version", version=f"atelier {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"service.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        return int(code or 0)
    except AtelierError as exc:
        print(f"atelier: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("atelier: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:
        if os.environ.get("ATELIER_DEBUG"):
            raise
        print(f"atelier: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
