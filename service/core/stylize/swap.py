"""Replacing a running engine's models with a freshly loaded set (hot reload), without touching either.

``StyleEngine.load`` on the models folder gives a candidate engine whose every model has passed the
checks of a start (sha256, the sanity probe, warm-up). ``combine(old, new)`` decides what serves next:

* a model the candidate loaded serves from the candidate (a new version, or the same one reopened);
* a model the candidate failed to load (corrupt file, sha256 mismatch, failed probe) but the old engine
  serves keeps its old version: a bad upload never takes a working style offline;
* a model no longer in the manifest is dropped (removing it is what the operator asked for);
* an unreadable manifest changes nothing at all.

Neither engine is modified: the result is a new ``StyleEngine`` over a new dict, so a caller holding the
old engine (a call in flight) finishes on exactly the sessions it started with, and the old sessions are
released when the last such caller lets go of the old engine (never ``close`` it while calls may hold it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.core.stylize.engine import StyleEngine

MANIFEST_KEY = "manifest.json"  # the load_errors key StyleEngine.load uses for an unreadable manifest


@dataclass(frozen=True)
class Combined:
    """What serves after a reload, and how it came to be."""

    engine: StyleEngine
    loaded: dict[str, str] = field(default_factory=dict)  # name -> version now served from the new load
    kept: dict[str, str] = field(default_factory=dict)  # name -> why its new version was refused (old serves)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why, with no old version to fall back on
    removed: tuple[str, ...] = ()  # names dropped from the manifest

    @property
    def ok(self) -> bool:
        """Every model of the manifest loaded (nothing kept back, nothing failed)."""
        return not self.kept and not self.failed


def combine(old: StyleEngine, new: StyleEngine) -> Combined:
    """The engine to serve after a reload that produced ``new`` while ``old`` was serving."""
    if MANIFEST_KEY in new.load_errors:  # nothing in the folder can be trusted: keep serving what we have
        return Combined(old, kept={MANIFEST_KEY: new.load_errors[MANIFEST_KEY]})
    models = dict(new._models)
    kept: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name, why in new.load_errors.items():
        if name in old._models:
            models[name] = old._models[name]
            kept[name] = why
        else:
            failed[name] = why
    removed = tuple(sorted(set(old._models) - set(models)))
    engine = StyleEngine(
        tile_threshold=new.tile_threshold,
        tile_size=new.tile_size,
        tile_overlap=new.tile_overlap,
        load_errors=dict(new.load_errors),
        _models=models,
    )
    loaded = {name: m.info.version for name, m in new._models.items()}
    return Combined(engine, loaded, kept, failed, removed)
