"""A new style in a trained multi-style net without retraining it: only the new style's table rows learn.

Dumoulin, Shlens & Kudlur 2017 (arXiv:1610.07629, section 4.3) show that a new painting can be learned by
a multi-style net's normalisation parameters alone, the convolutions fixed, much faster than a net from
scratch. Here every table (conditional norm and FiLM, ``nets/multi.py``) gets one more row, initialised at
the mean of the existing styles' rows (a point inside the learned style space, so training starts from a
plausible style rather than from the identity), and only those rows are trained:

* the training net is a one-style view (``style_view``) whose convolutions are a copy with
  ``requires_grad`` False, and whose tables are the new rows; the optimiser holds those rows only;
* the result is the old net with the trained rows appended (``append_style``): every old row and every
  shared weight is copied bit for bit, so the other styles' outputs stay bit-identical, and this is
  checked before anything is written.

Then the net is exported again through ``export.export_net`` (the same parity check at odd sizes, the card
with the new style's provenance beside the others', the manifest entry's ``styles``), with the version
bumped. The base is a multi checkpoint, an exported multi ``.onnx`` (its card supplies the styles), or a
models folder (its manifest names the multi net). Same recipe (``TrainConfig``), same ``train.step_terms``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument, ModelLoadError
from service.core.progress import CancelToken, ProgressCallback
from service.core.stylize.dataset import CropSampler, list_photos
from service.core.stylize.manifest import read_card, read_manifest, sha256_file
from service.core.stylize.nets.multi import (
    MULTI_ARCH,
    MultiStyleNet,
    append_style,
    multi_from_state,
    style_view,
)
from service.core.stylize.train import (
    TrainConfig,
    load_checkpoint,
    recipe_loss,
    rng_state,
    set_rng_state,
    step_terms,
    write_loss_curve,
)
from service.core.stylize.train_multi import MULTI_KEYS, StyleSource, check_style_names
from service.core.train_loop import StepBook, resume_optimizer

CARD_PROVENANCE = ("title", "artist", "year", "licence", "style_sha256")


@dataclass
class Base:
    """The multi net a style is added to: its checkpoint dict, where to export, its name and version."""

    ckpt: dict[str, Any]
    models_dir: Path | None
    name: str
    version: str


@dataclass
class AddStyleResult:
    checkpoint: Path
    step: int
    losses: dict[str, float]
    history: list[dict[str, float]]
    seconds: float
    card: dict[str, Any] | None  # the exported card, None when not exported


def _from_card(ckpt: dict[str, Any], card_path: Path) -> None:
    """The style records of an exported net, from its card (whose entries carry the provenance)."""
    card = read_card(card_path).to_dict()
    styles = card.get("styles")
    if not isinstance(styles, list):
        raise ModelLoadError(f"Model card {card_path} has no styles list: not a multi-style net's card.")
    ckpt["styles"] = [{"name": s["name"], **{k: str(s.get(k, "")) for k in CARD_PROVENANCE}} for s in styles]
    ckpt["config"] = dict(card.get("training", {}))
    ckpt["style_losses"] = dict(card.get("style_losses", {}))
    ckpt["added_styles"] = list(card.get("added_styles", []))
    ckpt["training_note"] = str(card.get("training_note", ""))  # the base's history, carried forward


def load_base(into: str | Path, net_name: str | None = None) -> Base:
    """The multi net at ``into``: a ``.ckpt``, an exported ``.onnx`` with its card, or a models folder."""
    from service.core.stylize.export_multi import multi_checkpoint_from_onnx

    path = Path(into)
    if path.is_dir():
        entries = [e for e in read_manifest(path) if e.arch == MULTI_ARCH]
        chosen = [e for e in entries if net_name in (None, e.name)]
        if not chosen:
            have = ", ".join(e.name for e in entries) or "none"
            raise InvalidArgument(f"No multi-style net {net_name or ''} in {path} (multi nets: {have}).")
        entry = chosen[0]
        if sha256_file(path / entry.file) != entry.sha256:
            raise ModelLoadError(f"{path / entry.file} does not match its manifest sha256.")
        ckpt = multi_checkpoint_from_onnx(path / entry.file)
        _from_card(ckpt, path / entry.card)
        return Base(ckpt, path, entry.name, entry.version)
    if path.suffix == ".onnx":
        ckpt = multi_checkpoint_from_onnx(path)
        card_path = path.with_suffix(".json")
        _from_card(ckpt, card_path)
        card = read_card(card_path)
        return Base(ckpt, path.parent, card.name, card.version)
    ckpt = load_checkpoint(path)
    if ckpt["arch"] != MULTI_ARCH:
        raise InvalidArgument(
            f"--into {path} is a {ckpt['arch']} net; a style is added to a {MULTI_ARCH} net."
        )
    return Base(ckpt, None, net_name or str(ckpt.get("name") or path.stem), str(ckpt.get("version", "1")))


def next_version(version: str) -> str:
    """ "3" -> "4"; a version that is not a number gets ".1" (a new style changes the file)."""
    return str(int(version) + 1) if version.isdigit() else f"{version}.1"


def add_style(
    config: TrainConfig,
    style: StyleSource,
    into: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    backbone: Backbone,
    net_name: str | None = None,
    models_dir: str | Path | None = None,
    export: bool = True,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> AddStyleResult:
    """Add ``style`` to the multi net at ``into`` and train only its rows; export unless ``export`` is
    False. The export goes to the base's own models folder when ``into`` is one (or an ``.onnx`` in one),
    else to ``models_dir``. Checkpoint: ``<out_dir>/<net>+<style>.ckpt`` (``resume`` continues it)."""
    config.validate()
    if config.distill:  # its cache is one painting's, and these loops train norm rows of many
        raise InvalidArgument("--distill trains a single-style net; a multi-style net does not take it.")
    base = load_base(into, net_name)
    names = [str(s["name"]) for s in base.ckpt.get("styles", [])]
    check_style_names([*names, style.name])
    device = torch.device(config.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = f"{base.name}+{style.name}"
    ckpt_path = out / f"{run}.ckpt"
    files = list_photos(data_dir)
    sampler = CropSampler(files, config.size, config.seed)
    old = multi_from_state(base.ckpt["model"])
    if len(names) != old.styles:
        raise ModelLoadError(f"The base lists {len(names)} styles for {old.styles} table rows.")

    torch.manual_seed(config.seed)
    start, history, cpu_before = 0, [], 0.0
    rows = {k: p.detach().mean(0, keepdim=True) for k, p in old.tables()}
    saved: dict[str, Any] | None = None
    if resume:
        saved = load_checkpoint(ckpt_path)
        if saved.get("adding", {}).get("name") != style.name:
            raise InvalidArgument(f"Checkpoint {ckpt_path} is not a run adding {style.name}.")
        grown = multi_from_state(saved["model"])
        rows = {k: p.detach()[-1:] for k, p in grown.tables()}
        start, history = int(saved["step"]), list(saved["history"])
        cpu_before = float(saved.get("cpu_seconds", 0.0))
    view = style_view(old, rows).to(device)
    tables = dict(view.tables())
    for key, p in view.named_parameters():
        p.requires_grad_(key in tables)  # the convolutions are frozen: only the new rows learn
    optimizer = torch.optim.Adam(list(tables.values()), lr=config.lr)
    if saved is not None:
        resume_optimizer(optimizer, saved["optimizer"], config.lr)
        set_rng_state(saved["rng"], device)
    record = style.record()
    config_dict = {**dict(base.ckpt.get("config", {})), "arch": MULTI_ARCH}
    added = [*base.ckpt.get("added_styles", [])]

    def merged() -> MultiStyleNet:
        return append_style(old.cpu(), {k: p.detach().cpu() for k, p in view.tables()})

    def fields(step: int) -> dict[str, Any]:
        note = {"name": style.name, "steps": step, "cpu_seconds": round(book.cpu_seconds(), 1)}
        return {
            "arch": MULTI_ARCH,
            "model": merged().state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(device),
            "config": config_dict,
            "add_style_config": asdict(config),
            "styles": [*base.ckpt.get("styles", []), record],
            "style_losses": dict(base.ckpt.get("style_losses", {})),
            "added_styles": [*added, note],
            "training_note": str(base.ckpt.get("training_note", "")),
            "adding": {"name": style.name, "index": old.styles},
            "name": base.name,
            "version": next_version(base.version),
            "photos": len(files),
        }

    book = StepBook(
        config,
        ckpt_path=ckpt_path,
        start=start,
        keys=MULTI_KEYS,
        history=history,
        fields=fields,
        after_save=lambda: write_loss_curve(history, out / f"{run}.loss.csv", out / f"{run}.loss.png"),
        cpu_before=cpu_before,
        progress=progress,
    )
    loss_fn = recipe_loss(config, backbone, style.image, device)
    use_amp = device.type == "cuda"
    index = torch.tensor(float(old.styles))

    book.begin()
    view.train()
    for step in range(start, config.steps):
        if cancel is not None:
            cancel.check()
        content = sampler.batch(step, config.batch).to(device, non_blocking=True)
        w = torch.ones(config.batch, 1, device=device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            terms = step_terms(config, loss_fn, view(content, w), content, step)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        terms["style_index"] = index
        if book.record(step, terms):
            break
    last, final, seconds = book.finish()
    final.pop("style_index", None)
    _check_untouched(old, merged())
    card = None
    target = base.models_dir or (Path(models_dir) if models_dir is not None else None)
    if export and target is not None:
        from service.core.stylize.export import ExportOptions, export_net

        ckpt = load_checkpoint(ckpt_path)
        version = str(ckpt["version"])
        added_note = (
            f"Version {version}: {style.name} added with atelier train --add-style (only its norm rows "
            f"trained: {last} steps, {book.cpu_seconds():.0f} CPU s); the other styles render "
            f"bit-identically to version {base.version}."
        )
        previous = str(ckpt.get("training_note", ""))
        note = f"{previous} {added_note}" if previous else added_note
        card = export_net(ckpt, target, ExportOptions(name=base.name, version=version, note=note))
    return AddStyleResult(ckpt_path, last, final, history, seconds, card)


def _check_untouched(old: MultiStyleNet, new: MultiStyleNet) -> None:
    """Every shared weight and every old row bit-identical: the other styles render exactly as before."""
    before, after = old.state_dict(), new.state_dict()
    for key, value in before.items():
        got = after[key][: value.shape[0]] if key in dict(old.tables()) else after[key]
        if not torch.equal(value.cpu(), got.cpu()):
            raise RuntimeError(f"Adding a style changed {key}; nothing was exported.")
