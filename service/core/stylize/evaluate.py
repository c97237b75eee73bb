"""Quality of the fast style networks, measured against Gatys optimisation on the same content/style pairs.

For each model and each photo (resized so its longer side is ``size``), two perceptual distances are taken
with the backbone taps the style losses use:

* style distance: the mean over the style taps of the Gram-matrix difference between the result and the
  style painting (painting resized to the same longer side), each divided by the squared mean magnitude of
  the painting's Gram (``normalized_style_loss``): the texture statistic of Gatys, Ecker and Bethge (2015),
  "A Neural Algorithm of Artistic Style" (arXiv:1508.06576);
* content distance: the feature difference at the content tap between the result and the photo, divided by
  the photo's mean square feature (``normalized_content_loss``).

The same two figures are computed for a Gatys result of the pair (``service.core.render.gatys``, L-BFGS
from the content image, ``gatys_steps`` iterations), which is what a feed-forward net trained on that style
(Johnson, Alahi and Fei-Fei 2016, arXiv:1603.08155) approximates. Gatys results are cached as PNG files
keyed by the inputs and settings, so a rerun (or a run cut short) only computes what is missing.

This module imports only ``service.core``, torch, numpy and PIL: it runs on a bare GPU machine.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.imageio import load_image, resize_to, save_image
from service.core.progress import CancelToken, ProgressCallback, ProgressClock
from service.core.render.gatys import GatysOptions, gatys, preset_for
from service.core.render.losses import gram_matrix, normalized_content_loss, normalized_style_loss
from service.core.stylize.engine import DEFAULT_PROVIDERS, StyleEngine
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image

STYLE_RATIO_BAR = 2.0  # fast style distance at most 2x Gatys'
CONTENT_RATIO_BAR = 1.5  # fast content distance at most 1.5x Gatys'
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class EvalOptions:
    size: int = 512  # longer side of every photo, fast result and Gatys result
    gatys_steps: int = 300  # L-BFGS iterations of the reference
    cache_dir: Path | None = None  # Gatys results as PNG; None: no cache
    keep_images: int = 0  # per model, keep (photo, fast, Gatys) images of this many photos for a sheet


@dataclass(frozen=True)
class PairResult:
    model: str
    photo: str
    fast_style: float
    gatys_style: float
    fast_content: float
    gatys_content: float
    fast_ms: float  # one fast-net call (prepare + ONNX Runtime + finish)
    gatys_cached: bool
    # The style distances per tap (in the order of EvalReport.style_taps); fast_style is their mean.
    fast_style_taps: tuple[float, ...] = ()
    gatys_style_taps: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelSummary:
    model: str
    photos: int
    fast_style: float  # mean over photos
    gatys_style: float
    fast_content: float
    gatys_content: float

    @property
    def style_ratio(self) -> float:
        return self.fast_style / max(self.gatys_style, 1e-12)

    @property
    def content_ratio(self) -> float:
        return self.fast_content / max(self.gatys_content, 1e-12)

    @property
    def meets_bar(self) -> bool:
        return self.style_ratio <= STYLE_RATIO_BAR and self.content_ratio <= CONTENT_RATIO_BAR


@dataclass
class EvalReport:
    size: int
    gatys_steps: int
    backbone: str
    style_taps: tuple[str, ...]
    content_tap: str
    device: str
    providers: dict[str, str]  # model -> ONNX Runtime provider in use
    pairs: list[PairResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it was not evaluated
    floors: dict[str, float] = field(
        default_factory=dict
    )  # model -> style distance of the resampled painting
    images: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def summaries(self) -> list[ModelSummary]:
        out = []
        for model in dict.fromkeys(p.model for p in self.pairs):
            rows = [p for p in self.pairs if p.model == model]
            out.append(
                ModelSummary(
                    model=model,
                    photos=len(rows),
                    fast_style=float(np.mean([p.fast_style for p in rows])),
                    gatys_style=float(np.mean([p.gatys_style for p in rows])),
                    fast_content=float(np.mean([p.fast_content for p in rows])),
                    gatys_content=float(np.mean([p.gatys_content for p in rows])),
                )
            )
        return out


def list_images(folder: str | Path) -> dict[str, Path]:
    """Image files of a folder by stem, sorted; ``InvalidArgument`` when the folder is missing or empty."""
    p = Path(folder)
    if not p.is_dir():
        raise InvalidArgument(f"Not a folder: {p}")
    found = {f.stem: f for f in sorted(p.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES}
    if not found:
        raise InvalidArgument(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {p}")
    return found


def match_style_images(engine: StyleEngine, styles_dir: str | Path) -> tuple[dict[str, Path], list[str]]:
    """Each loaded model's style painting, found by the card's ``style_sha256`` (of the file or of its
    decoded pixels), else by file stem: equal to the style key, or ending in ``_<style key>``.

    Returns (model -> image path, models without a painting).
    """
    from service.core.stylize.manifest import sha256_file

    files = list_images(styles_dir)
    by_sha: dict[str, Path] = {}
    for f in files.values():
        by_sha[sha256_file(f)] = f
        by_sha[hashlib.sha256(np.ascontiguousarray(load_image(f)).tobytes()).hexdigest()] = f
    found: dict[str, Path] = {}
    missing: list[str] = []
    for info in engine.styles():
        sha = str(info.card.get("style_sha256", "")).lower()
        key = info.style
        path = by_sha.get(sha) or files.get(key)
        path = path or next((f for stem, f in files.items() if stem.endswith(f"_{key}")), None)
        if path is None:
            missing.append(info.name)
        else:
            found[info.name] = path
    return found, missing


def resize_long_side(image: np.ndarray, side: int) -> np.ndarray:
    """Resize (up or down) so the longer side is exactly ``side``."""
    h, w = scale_to_side(image.shape[0], image.shape[1], side)
    return resize_to(image, w, h)


class StyleDistances:
    """Style (Gram) and content distances to one style painting, with its targets computed once."""

    def __init__(self, backbone: Backbone, style: np.ndarray, size: int) -> None:
        preset = preset_for(backbone)
        self.backbone = backbone
        self.style_taps, self.content_tap = preset.style_taps, preset.content_tap
        with torch.no_grad():
            feats = backbone.features(self._tensor(resize_long_side(style, size)), self.style_taps)
            self.grams = {t: gram_matrix(feats[t]) for t in self.style_taps}
            # The painting itself, resampled with the other common filter (torch's antialiased bilinear,
            # what the Gatys targets are built with, against PIL's here): an image with exactly the
            # painting's content and strokes. Its distance is the floor set by resampling alone; the
            # Lite0 expand taps are so sensitive to the finest detail that this floor is not small.
            h, w = scale_to_side(style.shape[0], style.shape[1], size)
            other = tensor_to_image(resize_tensor(self._tensor(style), h, w))
            self.floor = self._style(other)

    def _style(self, image: np.ndarray) -> float:
        return float(np.mean(self.style_by_tap(image)))

    def style_by_tap(self, image: np.ndarray) -> tuple[float, ...]:
        """The normalised Gram distance at each style tap; the style distance is their mean."""
        feats = self.backbone.features(self._tensor(image), self.style_taps)
        return tuple(
            float(normalized_style_loss(gram_matrix(feats[t]), self.grams[t])) for t in self.style_taps
        )

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        return image_to_tensor(image, self.backbone.device)

    @torch.no_grad()
    def __call__(self, content: np.ndarray, *results: np.ndarray) -> list[tuple[tuple[float, ...], float]]:
        """(style distance per tap, content distance) of each result of ``content`` (its features
        computed once)."""
        target = self.backbone.features(self._tensor(content), [self.content_tap])[self.content_tap]
        out = []
        for result in results:
            feats = self.backbone.features(self._tensor(result), [self.content_tap])[self.content_tap]
            out.append((self.style_by_tap(result), float(normalized_content_loss(feats, target))))
        return out


def _cache_key(content: np.ndarray, style: np.ndarray, backbone: str, size: int, steps: int) -> str:
    h = hashlib.sha256()
    for arr in (content, style):
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{backbone}|{size}|{steps}|lbfgs|content".encode())
    return h.hexdigest()[:20]


def gatys_reference(
    backbone: Backbone,
    content: np.ndarray,
    style: np.ndarray,
    options: EvalOptions,
    label: str = "",
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, bool]:
    """The Gatys result for (content, style) at ``options.size``; (image, True) when read from the cache."""
    path = None
    if options.cache_dir is not None:
        key = _cache_key(content, style, backbone.name, options.size, options.gatys_steps)
        path = Path(options.cache_dir) / f"{label + '__' if label else ''}{key}.png"
        if path.is_file():
            return load_image(path), True
    out = gatys(
        backbone, content, [style], GatysOptions(size=options.size, steps=options.gatys_steps), cancel=cancel
    )
    if path is not None:
        save_image(out, path)
    return out, False


def evaluate_styles(
    engine: StyleEngine,
    backbone: Backbone,
    style_images: Mapping[str, np.ndarray],
    photos: Mapping[str, np.ndarray],
    options: EvalOptions = EvalOptions(),
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> EvalReport:
    """Distances of each model's results (``style_images``: model name -> its painting) and of Gatys.

    Every photo is first resized so its longer side is ``options.size``; the fast net and Gatys both get
    that image. Progress is reported once per (model, photo) pair.
    """
    if options.size < 32 or options.gatys_steps < 1:
        raise InvalidArgument(
            f"size must be >= 32 and gatys_steps >= 1, got {options.size}, {options.gatys_steps}."
        )
    if not style_images or not photos:
        raise InvalidArgument("Give at least one model with its style image and at least one photo.")
    for name in style_images:
        engine.info(name)  # UnknownModel before any work
    preset = preset_for(backbone)
    report = EvalReport(
        size=options.size,
        gatys_steps=options.gatys_steps,
        backbone=backbone.name,
        style_taps=preset.style_taps,
        content_tap=preset.content_tap,
        device=str(backbone.device),
        providers={name: engine.info(name).provider for name in style_images},
    )
    contents = {name: resize_long_side(img, options.size) for name, img in photos.items()}
    clock = ProgressClock(len(style_images) * len(contents))
    step = 0
    for model, style in style_images.items():
        distances = StyleDistances(backbone, style, options.size)
        report.floors[model] = distances.floor
        style_key = engine.info(model).style
        for i, (photo, content) in enumerate(contents.items()):
            if cancel is not None:
                cancel.check()
            t0 = time.perf_counter()
            fast = engine.stylize(model, content)
            fast_ms = (time.perf_counter() - t0) * 1e3
            ref, cached = gatys_reference(backbone, content, style, options, f"{style_key}__{photo}", cancel)
            (fst, fc), (gst, gc) = distances(content, fast, ref)
            fs, gs = float(np.mean(fst)), float(np.mean(gst))
            report.pairs.append(PairResult(model, photo, fs, gs, fc, gc, fast_ms, cached, fst, gst))
            if i < options.keep_images:
                report.images[(model, photo)] = (content, fast, ref)
            step += 1
            if progress is not None:
                losses = {"style_ratio": fs / max(gs, 1e-12), "content_ratio": fc / max(gc, 1e-12)}
                progress(clock.report(step, losses, stage=f"{model} / {photo}"))
    return report


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _ratios(fast: Sequence[float], gatys: Sequence[float], fmt: str) -> list[str]:
    return [format(f / max(g, 1e-12), fmt) for f, g in zip(fast, gatys, strict=True)]


def _by_tap_lines(report: EvalReport) -> list[str]:
    """Where each model's style gap is: fast / Gatys of the per-tap style distances (means over photos).

    The style distance is the mean over the taps. A tap's ratio says how far the fast net is from Gatys
    there, its share how much that tap weighs in the distance: a tap with a high ratio and a small share
    (typically ``stem``, whose Gram distances are small) moves the total little.
    """
    pairs = [p for p in report.pairs if p.fast_style_taps]
    if not pairs:
        return []
    lines = [
        "",
        "Style ratio by tap: mean fast distance / mean Gatys distance over the photos, per tap, and in "
        "brackets that tap's share of the fast net's style distance (the mean of the taps' distances):",
        "",
        "| model | " + " | ".join(f"`{t}`" for t in report.style_taps) + " |",
        "|---|" + "---:|" * len(report.style_taps),
    ]
    for model in dict.fromkeys(p.model for p in pairs):
        fast = np.mean([p.fast_style_taps for p in pairs if p.model == model], axis=0)
        gatys = np.mean([p.gatys_style_taps for p in pairs if p.model == model], axis=0)
        shares = fast / max(float(fast.sum()), 1e-12)
        cells = [
            f"{r} ({share:.0%})"
            for r, share in zip(_ratios(list(fast), list(gatys), ".2f"), shares, strict=True)
        ]
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    return lines


def report_markdown(report: EvalReport, machine: str = "") -> str:
    """The evaluation as markdown: a header line, the per-model table, then per-photo rows in <details>.

    The text between the ``eval-style`` markers is meant to be pasted into ``models/README.md``.
    """
    providers = ", ".join(sorted(set(report.providers.values()))) or "?"
    photos = len({p.photo for p in report.pairs})
    lines = [
        "<!-- eval-style: begin (generated by scripts/eval_style.py / atelier eval-style) -->",
        f"{photos} photos at {report.size} px (longer side); Gatys reference: {report.gatys_steps} L-BFGS "
        f"iterations from the content image. Distances on `{report.backbone}` taps: style (Gram) "
        f"{', '.join(f'`{t}`' for t in report.style_taps)}; content `{report.content_tap}`. "
        f"Backbone on `{report.device}`, fast nets on {providers}{'; ' + machine if machine else ''}.",
        "",
        f"Bar: style distance at most {STYLE_RATIO_BAR:g}x Gatys', content distance at most "
        f"{CONTENT_RATIO_BAR:g}x Gatys' (ratios of the means over the photos).",
        "",
        "Floor: the style distance of the painting itself resampled with another filter (torch's "
        "antialiased bilinear instead of PIL's): what resampling alone costs on these taps.",
        "",
        "| model | photos | style dist. fast | style dist. Gatys | floor | style ratio | content dist. fast "
        "| content dist. Gatys | content ratio | style ratio, median of the photos' | fast net ms (median) "
        "| meets bar |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in report.summaries():
        rows = [p for p in report.pairs if p.model == s.model]
        ms = float(np.median([p.fast_ms for p in rows]))
        median_ratio = float(np.median([p.fast_style / max(p.gatys_style, 1e-12) for p in rows]))
        lines.append(
            f"| `{s.model}` | {s.photos} | {_fmt(s.fast_style)} | {_fmt(s.gatys_style)} | "
            f"{_fmt(report.floors.get(s.model, float('nan')))} | {s.style_ratio:.2f} | {_fmt(s.fast_content)} | {_fmt(s.gatys_content)} | "
            f"{s.content_ratio:.2f} | {median_ratio:.2f} | {ms:.0f} | {'yes' if s.meets_bar else '**no**'} |"
        )
    lines += _by_tap_lines(report)
    lines += [
        "",
        "<details><summary>Per photo</summary>",
        "",
        "| model | photo | style fast | style Gatys | content fast | content Gatys | style ratio by tap |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for p in report.pairs:
        by_tap = " / ".join(_ratios(p.fast_style_taps, p.gatys_style_taps, ".2g"))
        lines.append(
            f"| `{p.model}` | {p.photo} | {_fmt(p.fast_style)} | {_fmt(p.gatys_style)} | "
            f"{_fmt(p.fast_content)} | {_fmt(p.gatys_content)} | {by_tap} |"
        )
    lines += ["", "</details>"]
    lines += [f"\nNot evaluated: `{m}`: {why}" for m, why in sorted(report.skipped.items())]
    lines += ["<!-- eval-style: end -->", ""]
    return "\n".join(lines)


def contact_sheet(report: EvalReport, cell: int = 256) -> np.ndarray:
    """One row per kept (model, photo): photo | fast net | Gatys, each fitted into ``cell`` x ``cell``."""
    if not report.images:
        raise InvalidArgument("No images were kept (EvalOptions.keep_images is 0).")
    rows = []
    for triple in report.images.values():
        cells = []
        for im in triple:
            canvas = np.full((cell, cell, 3), 255, np.uint8)
            fitted = resize_long_side(im, cell)
            h, w = fitted.shape[:2]
            canvas[(cell - h) // 2 : (cell - h) // 2 + h, (cell - w) // 2 : (cell - w) // 2 + w] = fitted
            cells.append(canvas)
        rows.append(np.concatenate(cells, axis=1))
    return np.concatenate(rows, axis=0)


def run_evaluation(
    models_dir: str | Path,
    content_dir: str | Path,
    styles_dir: str | Path,
    options: EvalOptions,
    device: str = "cpu",
    providers: tuple[str, ...] = DEFAULT_PROVIDERS,
    models: tuple[str, ...] = (),
    max_photos: int | None = None,
    backbone_name: str = "efficientnet_lite0",
    progress: ProgressCallback | None = None,
) -> EvalReport:
    """Load the models of ``models_dir`` and evaluate those (or the ``models`` named) whose painting is in
    ``styles_dir``, on the photos of ``content_dir`` (the first ``max_photos`` by name)."""
    from service.core.backbones import get_backbone

    with StyleEngine.load(models_dir, providers=providers) as engine:
        paths, missing = match_style_images(engine, styles_dir)
        for name in models:
            engine.info(name)  # UnknownModel listing the loaded ones
        chosen = {m: p for m, p in paths.items() if not models or m in models}
        if not chosen:
            raise InvalidArgument(f"No loaded model has its style image in {styles_dir}.")
        photo_paths = list(list_images(content_dir).items())[:max_photos]
        photos = {name: load_image(path) for name, path in photo_paths}
        backbone = get_backbone(backbone_name, device)
        report = evaluate_styles(
            engine,
            backbone,
            {m: load_image(p) for m, p in chosen.items()},
            photos,
            options,
            progress,
        )
        report.skipped.update(engine.load_errors)
        report.skipped.update(
            {m: f"no style image in {styles_dir}" for m in missing if not models or m in models}
        )
        return report
