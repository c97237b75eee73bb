"""Helpers shared by CLI commands: settings with flag overrides, progress bars."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from service.core.progress import Progress, ProgressCallback

if TYPE_CHECKING:
    from service.settings import Settings


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, with the given CLI values (when not None) taking precedence.

    Imported lazily: commands that run on a bare GPU machine (training) must not need pydantic.
    """
    from service.settings import Settings

    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)


def add_backbone_arg(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--backbone",
        choices=("efficientnet_lite0", "vgg16", "vgg19"),
        default=default,
        help="pretrained CNN (VGG needs its torchvision weights file; default: efficientnet_lite0)",
    )


@contextmanager
def progress_bar(desc: str, total: int) -> Iterator[ProgressCallback]:
    """A tqdm bar driven by ``Progress`` reports: shows the stage and losses, ETA from tqdm."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True)
    last = 0

    def update(p: Progress) -> None:
        nonlocal last
        if p.total != bar.total:
            bar.total = p.total
        bar.update(max(0, p.step - last))
        last = p.step
        post = {k: f"{v:.3g}" for k, v in list(p.losses.items())[:4]}
        if p.stage:
            post = {"stage": p.stage, **post}
        bar.set_postfix(post, refresh=False)

    try:
        yield update
    finally:
        bar.close()


def add_json_arg(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    parser.add_argument(
        "--json", action="store_true", help=f"print {what} as one JSON document on stdout instead of a table"
    )


def print_json(document: object) -> None:
    """One JSON document on stdout (paths and other non-JSON values as strings, NaN and inf as null)."""
    print(json.dumps(_finite(document), indent=2, default=str, allow_nan=False))


def _finite(value: object) -> object:
    # json.dumps writes NaN, which strict parsers (jq, JavaScript) reject.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def print_table(header: Sequence[str] | None, rows: Iterable[Sequence[str]], indent: str = "") -> None:
    """Left-aligned columns two spaces apart, no trailing blanks; ``header`` None prints no header."""
    table = ([list(header)] if header else []) + [list(r) for r in rows]
    if not table:
        return
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    for row in table:
        print(indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
