"""ImageNet-1k class names (torchvision's list, shipped as a text file: importing torchvision.models just for
the names costs seconds at every server start; a test checks the file against torchvision)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from service.core.errors import InvalidArgument, quoted

# ASCII digits only: str.isdigit() also admits '²' and other digits that int() refuses.
_INDEX = re.compile(r"-?[0-9]+")


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    text = (Path(__file__).parent / "imagenet_labels.txt").read_text(encoding="utf-8")
    return text.splitlines()


def resolve_class(target: int | str, labels: list[str] | None = None) -> int:
    """Turn a class index or a label name (case-insensitive, exact or unique prefix) into an index."""
    names = labels if labels is not None else imagenet_labels()
    if isinstance(target, str) and _INDEX.fullmatch(target.strip()):
        if len(target.strip()) > 18:  # int() refuses more than 4300 digits; no index has 19
            raise InvalidArgument(
                f"Class index {quoted(target.strip())} is out of range 0..{len(names) - 1}."
            )
        target = int(target)
    if isinstance(target, int):
        idx = target
        if not 0 <= idx < len(names):
            raise InvalidArgument(f"Class index {idx} is out of range 0..{len(names) - 1}.")
        return idx
    key = target.strip().lower()
    exact = [i for i, n in enumerate(names) if n.lower() == key]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if n.lower().startswith(key)]
    if len(partial) == 1:
        return partial[0]
    if partial:
        shown = ", ".join(names[i] for i in partial[:8])
        more = " ..." if len(partial) > 8 else ""
        raise InvalidArgument(f"Class {quoted(target)} is ambiguous: {shown}{more}.")
    raise InvalidArgument(
        f"Unknown class {quoted(target)}: give an ImageNet class index 0..999 or a label name."
    )
