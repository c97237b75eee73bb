"""The range every option of every algorithm the server runs must fall in, checked by the one parser.

``plane/options.py`` (``build_options``) looks the options class up here and refuses a value outside its
``Bound`` before the dataclass is built, so an option can never make one request unbounded (20 million
octaves, a negative seed that only fails inside the job, an ``octave_scale`` that overflows). These are
absolute bounds; the server's settings add per-request caps on top (``max_side_slow``, the pixel and work
limits of ``plane/admission.py``). Every settable field of every class listed in ``PARSED_CLASSES`` has an
entry (``tests/test_admission.py`` checks it); ``docs/limits.md`` is generated from this table
(``python -m service.server.plane.bounds``).

Classes are keyed by name so this module imports no algorithm (torch loads only when a job is built).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass

SEED_MAX = 2**32 - 1  # every algorithm's seed fits torch's and numpy's generators
NAME_CHARS = 64  # longest string option (tap names, optimizer, baseline): no real name is longer
WEIGHT_MAX = 1e9  # loss weights: far above any useful value, below float overflow in the loss sum
SIDE_MAX = 8192  # sizes in pixels; the setting max_side_slow is the tighter, per-server cap


@dataclass(frozen=True)
class Bound:
    """``lo <= value <= hi`` for a number (each item of a tuple of numbers); ``items``: most tuple items."""

    lo: float | None = None
    hi: float | None = None
    items: int | None = None
    note: str = ""  # shown in docs/limits.md


def _n(lo: float, hi: float, note: str = "") -> Bound:
    return Bound(lo, hi, note=note)


SEED = _n(0, SEED_MAX)
PREVIEW = _n(0, 10_000, "0: no previews")
BATCH = _n(1, 256, "images per forward pass")
TEXT = Bound(note=f"at most {NAME_CHARS} characters")
POOLING = Bound(note="max or avg (avg: VGG backbones only)")

# Options class name -> field -> bound. Booleans need none; strings are capped at NAME_CHARS.
OPTION_BOUNDS: dict[str, dict[str, Bound]] = {
    "GatysOptions": {
        "size": _n(16, SIDE_MAX, "and at most the setting max_side_slow"),
        "steps": _n(1, 10_000),
        "scales": Bound(16, SIDE_MAX, items=8, note="increasing; the last is the result's size"),
        "optimizer": TEXT,
        "init": TEXT,
        "content_weight": _n(0, WEIGHT_MAX),
        "style_weight": _n(0, WEIGHT_MAX),
        "tv_weight": _n(0, WEIGHT_MAX),
        "style_scale": _n(0.01, 8),
        "style_blend": Bound(0, 1e6, items=64, note="one weight per style image"),
        "seed": SEED,
        "preview_every": PREVIEW,
        "scale_steps": Bound(1, 10_000, items=8, note="one count per scale"),
        "learning_rate": _n(1e-6, 100),
        "content_tap": TEXT,
        "style_taps": Bound(items=16, note=f"names of at most {NAME_CHARS} characters"),
        "pooling": POOLING,
    },
    "DreamOptions": {
        "layers": Bound(items=16, note=f"names of at most {NAME_CHARS} characters"),
        "channel": _n(0, 100_000, "and below the layer's channel count"),
        "octaves": _n(1, 12),
        "octave_scale": _n(1, 4),
        "steps": _n(1, 1_000, "per octave"),
        "step_size": _n(1e-6, 1),
        "jitter": _n(0, 512),
        "tile_size": _n(32, 4_096),
        "seed": SEED,
        "preview_every": PREVIEW,
        "size": _n(32, SIDE_MAX, "and at most the setting max_side_slow"),
        "pooling": POOLING,
    },
    "StylizeOptions": {
        "strength": _n(0, 1),
        "max_side": _n(16, 65_536, "and at most the setting max_side_stylize"),
    },
    "ArbitraryOptions": {
        "strength": _n(0, 1),
        "max_side": _n(16, 65_536, "and at most the setting max_side_stylize"),
        "style_size": _n(32, 1_024, "the painting's longer side for its statistics"),
    },
    "SmoothGradOptions": {
        "samples": _n(1, 1_024),
        "noise": _n(0, 10),
        "seed": SEED,
        "batch_size": BATCH,
    },
    "IntegratedGradientsOptions": {
        "steps": _n(1, 4_096),
        "baseline": TEXT,
        "blur": _n(0, 1),
        "batch_size": BATCH,
    },
    "OcclusionOptions": {
        "window": _n(1, 1_024),
        "stride": _n(1, 1_024),
        "fill": _n(0, 1),
        "batch_size": BATCH,
    },
    "RiseOptions": {
        "masks": _n(1, 10_000),
        "cells": _n(1, 64),
        "p": _n(0.01, 1),
        "seed": SEED,
        "batch_size": BATCH,
    },
    "CamOptions": {"tap": TEXT},
}


def parsed_classes() -> Iterator[tuple[str, type]]:
    """(algorithm, options class) for everything the server parses with ``build_options``."""
    from service.core.arbitrary.engine import ArbitraryOptions
    from service.core.render.deepdream import DreamOptions
    from service.core.render.gatys import GatysOptions
    from service.core.saliency import METHODS
    from service.core.saliency.registry import get_method
    from service.core.stylize.engine import StylizeOptions

    yield "Stylize", StylizeOptions
    yield "Stylize style_image", ArbitraryOptions
    yield "Gatys", GatysOptions
    yield "DeepDream", DreamOptions
    for name in METHODS:
        yield f"Saliency {name}", get_method(name).options


def bound_of(cls: type, name: str) -> Bound | None:
    """The bound of option ``name`` of ``cls``; None for an unlisted class or field (booleans)."""
    return OPTION_BOUNDS.get(cls.__name__, {}).get(name)


def _range(b: Bound) -> str:
    def fmt(v: float | None) -> str:
        if v is None:
            return ""
        return f"{int(v):,}".replace(",", " ") if float(v).is_integer() else f"{v:g}"

    if b.lo is None and b.hi is None:
        return ""
    return f"{fmt(b.lo)} .. {fmt(b.hi)}"


def markdown_table(blocked: dict[str, tuple[str, ...]] | None = None) -> str:
    """The bounds as a Markdown table (algorithm, option, type, range, items, note), for docs/limits.md.

    ``blocked``: options class name -> fields the server sets itself (not listed)."""
    blocked = blocked or {}
    users: dict[type, list[str]] = {}  # one options class may serve several methods (the Grad-CAMs)
    for algorithm, cls in parsed_classes():
        users.setdefault(cls, []).append(algorithm)
    rows = ["| algorithm | option | type | range | most items | note |", "|---|---|---|---|---|---|"]
    for cls, algorithms in users.items():
        label = algorithms[0] + "".join(f", {a.split()[-1]}" for a in algorithms[1:])
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in blocked.get(cls.__name__, ()):
                continue
            kind = str(hints[f.name]).replace("typing.", "").replace("NoneType", "None")
            kind = kind.replace("<class '", "").replace("'>", "").replace(" | ", " or ")  # a table cell
            b = bound_of(cls, f.name) or Bound()
            items = str(b.items) if b.items is not None else ""
            note = b.note or (TEXT.note if kind.startswith("str") else "")
            rows.append(f"| {label} | `{f.name}` | `{kind}` | {_range(b)} | {items} | {note} |")
    return "\n".join(rows)


if __name__ == "__main__":
    from service.server.plane.slow_jobs import DREAM_BLOCKED, GATYS_BLOCKED

    print(markdown_table({"GatysOptions": GATYS_BLOCKED, "DreamOptions": DREAM_BLOCKED}))
