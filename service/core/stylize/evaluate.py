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

Beside the distances, each result gets the picture measures of ``service.core.stylize.measures``
(structure, grid score beside the photo's own, droplets): a net can win on the Gram distance and still
lose the picture. The result types and the markdown / JSON reports are in ``eval_report``.

This module imports only ``service.core``, torch, numpy and PIL: it runs on a bare GPU machine.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
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
from service.core.stylize.eval_report import (
    CONTENT_RATIO_BAR,
    STYLE_RATIO_BAR,
    EvalReport,
    ModelSummary,
    PairResult,
    PictureSummary,
    report_json,
    report_markdown,
)
from service.core.stylize.measures import grid_score, palette_chroma, picture_quality
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

__all__ = [  # the result types and reports live in eval_report; importable from here as before
    "CONTENT_RATIO_BAR",
    "STYLE_RATIO_BAR",
    "EvalOptions",
    "EvalReport",
    "ModelSummary",
    "PairResult",
    "PictureSummary",
    "StyleDistances",
    "contact_sheet",
    "evaluate_styles",
    "gatys_reference",
    "list_images",
    "match_style_images",
    "report_json",
    "report_markdown",
    "resize_long_side",
    "run_evaluation",
]


@dataclass(frozen=True)
class EvalOptions:
    size: int = 512  # longer side of every photo, fast result and Gatys result
    gatys_steps: int = 300  # L-BFGS iterations of the reference
    cache_dir: Path | None = None  # Gatys results as PNG; None: no cache
    keep_images: int = 0  # per model, keep (photo, fast, Gatys) images of this many photos for a sheet


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
    that image. Progress is reported once per (model, photo) pair. The picture measures are taken on
    the uint8 results as returned (never re-encoded), the photos' own grid scores once per photo.
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
    photo_grids = {name: grid_score(img).score for name, img in contents.items()}
    clock = ProgressClock(len(style_images) * len(contents))
    step = 0
    for model, style in style_images.items():
        distances = StyleDistances(backbone, style, options.size)
        report.floors[model] = distances.floor
        style_key = engine.info(model).style
        palette = palette_chroma(style)
        for i, (photo, content) in enumerate(contents.items()):
            if cancel is not None:
                cancel.check()
            t0 = time.perf_counter()
            fast = engine.stylize(model, content)
            fast_ms = (time.perf_counter() - t0) * 1e3
            ref, cached = gatys_reference(backbone, content, style, options, f"{style_key}__{photo}", cancel)
            (fst, fc), (gst, gc) = distances(content, fast, ref)
            fs, gs = float(np.mean(fst)), float(np.mean(gst))
            fast_q, ref_q = (
                picture_quality(img, content, style, palette, photo_grids[photo]) for img in (fast, ref)
            )
            report.pairs.append(
                PairResult(model, photo, fs, gs, fc, gc, fast_ms, cached, fst, gst, fast_q, ref_q)
            )
            if i < options.keep_images:
                report.images[(model, photo)] = (content, fast, ref)
            step += 1
            if progress is not None:
                losses = {
                    "style_ratio": fs / max(gs, 1e-12),
                    "content_ratio": fc / max(gc, 1e-12),
                    "structure": fast_q.structure,
                    "grid_over_photo": fast_q.grid_over_photo,
                }
                progress(clock.report(step, losses, stage=f"{model} / {photo}"))
    return report


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
