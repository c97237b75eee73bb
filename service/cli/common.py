"""Helpers shared by CLI commands: settings with flag overrides, progress bars."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
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
