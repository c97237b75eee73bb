"""The ``atelier`` command line. Each command group lives in its own module with a ``register`` function.

Errors print one line to stderr and exit non-zero; ``ATELIER_DEBUG=1`` shows the traceback instead.
``-v/--verbose`` (before or after the command) shows the library's log records, which are otherwise
summed up by the commands (e.g. one line for the ONNX Runtime provider, see ``service.cli.runtime``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from service import __version__
from service.core.errors import AtelierError

# Modules under service.cli that define ``register(subparsers)``; order is the order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "classify", "serve", "keys", "train", "arbitrary", "stylize", "render", "saliency", "features", "attack",
    "doctor", "worker", "health", "completion",
)  # fmt: skip
VERBOSE_HELP = "show the log records of the libraries (ONNX Runtime provider notes, model loading)"


def _add_verbose(parser: argparse.ArgumentParser, top: bool) -> None:
    """``-v`` on the top parser and on every (sub)command, so it works wherever it is typed."""
    default = False if top else argparse.SUPPRESS  # SUPPRESS: a subcommand never resets the top's value
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help=VERBOSE_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbose(child, top=False)


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
    _add_verbose(parser, top=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and args.command != "serve":  # serve sets up its own logging from ATELIER_LOG_LEVEL
        logging.basicConfig(level=logging.WARNING, format="atelier: %(levelname)s %(name)s: %(message)s")
        logging.getLogger("service").setLevel(logging.DEBUG)
    try:
        code = args.func(args)
        return int(code or 0)
    except AtelierError as exc:
        print(f"atelier: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`atelier completion bash | head`): not an error worth a message. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
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
