"""The slow-path work the data plane runs as jobs: Gatys, DeepDream and saliency (attacks: attack_jobs.py).

Gatys and DeepDream take a ``pooling`` option (``max`` or ``avg``, VGG only): the backbone is built with it.

Each ``prepare_*`` function runs off the event loop *before* a job is created: it decodes the images and
parses the options, so bad input fails the request at once (INVALID_ARGUMENT / 400) instead of becoming
a failed job. It returns the job function, which the worker thread runs with the job's cancel token and
progress callback. Server limits (``max_side_slow``, the pixel limit) are imposed here, never taken from
the client, and so are the admission caps of ``plane/admission.py`` (style count, total input pixels,
estimated work): everything that could fail or run away inside the job is checked before it is queued.

The job function holds the decoded images only while it runs: the job manager drops it (and with it
the images) as soon as the job ends, whatever the outcome, and keeps only the encoded result.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.core.errors import InvalidArgument, quoted
from service.core.imageio import MIME_TYPES, ImageLimits, decode_image, encode_image, resize_max_side
from service.core.progress import CancelToken, ProgressCallback
from service.server.jobs.manager import JobFunction, JobOutput
from service.server.jobs.work import JobSpec, JobWork
from service.server.plane.admission import (
    AdmissionLimits,
    check_input_pixels,
    check_styles,
    check_work,
    dream_work,
    gatys_work,
    saliency_work,
)
from service.server.plane.attack_jobs import attack_from_spec
from service.server.plane.options import build_options

SALIENCY_OUTPUTS: tuple[str, ...] = ("overlay", "heatmap", "float32", "npy", "json")
# Option fields the server sets itself (its size limits; images arrive as files, not options).
GATYS_BLOCKED: tuple[str, ...] = ("max_side", "max_pixels")
DREAM_BLOCKED: tuple[str, ...] = ("guide", "max_side", "max_pixels")


@dataclass(frozen=True)
class SlowConfig:
    """What the slow path needs from the settings (plain values, read once at start)."""

    limits: ImageLimits
    max_side: int  # settings.max_side_slow: largest render / saliency input side
    device: str
    default_backbone: str
    backbone_weights: Mapping[str, str | Path | None]
    admission: AdmissionLimits


def _backbone(cfg: SlowConfig, name: str | None, pooling: str = "max") -> Any:
    """The backbone ``name`` (default: the server's) with ``pooling`` (VGG's max or avg pools).

    An unknown pooling is refused here, before any weights are looked for; "avg" with EfficientNet-Lite0
    is refused by ``get_backbone`` (it has no pools to swap); a VGG whose weights file is missing raises
    ``WeightsNotFound`` as it does without the option.
    """
    from service.core.backbones import get_backbone
    from service.core.backbones.vgg import POOLINGS

    if pooling not in POOLINGS:
        raise InvalidArgument(
            f"Unknown pooling {quoted(pooling)}; use one of {', '.join(POOLINGS)} (avg: VGG backbones only)."
        )
    return get_backbone(name or cfg.default_backbone, cfg.device, cfg.backbone_weights, pooling=pooling)


def _decode_within(data: bytes, cfg: SlowConfig) -> np.ndarray:
    """Decode and downscale to the slow path's side limit."""
    return resize_max_side(decode_image(data, cfg.limits), cfg.max_side)


def _encode(image: np.ndarray, fmt: str, quality: int, **extra: Any) -> JobOutput:
    return JobOutput(
        encode_image(image, fmt, quality), MIME_TYPES[fmt], int(image.shape[1]), int(image.shape[0]), extra
    )


def prepare_gatys(
    cfg: SlowConfig,
    content: bytes,
    styles: list[bytes],
    options: Mapping[str, Any] | None,
    fmt: str,
    quality: int,
    backbone: str | None,
) -> JobFunction:
    """Gatys et al. (2015) style transfer as a job; see ``service.core.render.gatys``."""
    from service.core.render.gatys import GatysOptions, check_gatys, gatys

    opts = build_options(GatysOptions, options, blocked=GATYS_BLOCKED, what="Gatys")
    opts.max_side = cfg.max_side
    opts.max_pixels = cfg.limits.max_pixels
    if not styles:
        raise InvalidArgument("Gatys needs at least one style image.")
    check_styles(len(styles), cfg.admission)
    check_input_pixels([content, *styles], cfg.admission)  # from the headers, before decoding
    content_img = decode_image(content, cfg.limits)
    style_imgs = [decode_image(s, cfg.limits) for s in styles]
    net = _backbone(cfg, backbone, opts.pooling)
    check_gatys(net, content_img, style_imgs, opts)  # a bad option is refused before the job is accepted
    work = gatys_work(content_img.shape[:2], [s.shape[:2] for s in style_imgs], opts)
    check_work(work, cfg.admission, "Gatys", "steps, scale_steps, size or scales")

    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        out = gatys(net, content_img, style_imgs, opts, progress=progress, cancel=cancel)
        return _encode(out, fmt, quality)

    return run


def prepare_deepdream(
    cfg: SlowConfig,
    image: bytes,
    options: Mapping[str, Any] | None,
    fmt: str,
    quality: int,
    backbone: str | None,
    guide: bytes | None = None,
) -> JobFunction:
    """DeepDream (Mordvintsev, Olah & Tyka 2015) as a job; see ``service.core.render.deepdream``.

    The input is downscaled to the server's ``max_side_slow`` (DeepDream works at the image's own size, or
    at ``options.size``, which may not exceed that limit).
    """
    from service.core.render.deepdream import DreamOptions, check_deepdream, deepdream
    from service.core.tensors import scale_to_side

    opts = build_options(DreamOptions, options, blocked=DREAM_BLOCKED, what="DeepDream")
    opts.max_side = cfg.max_side
    opts.max_pixels = cfg.limits.max_pixels
    check_input_pixels([image, guide] if guide else [image], cfg.admission)
    img = _decode_within(image, cfg)
    if guide:
        opts.guide = _decode_within(guide, cfg)
    net = _backbone(cfg, backbone, opts.pooling)
    check_deepdream(net, img, opts)  # a bad option is refused before the job is accepted
    h, w = img.shape[:2] if opts.size is None else scale_to_side(img.shape[0], img.shape[1], opts.size)
    check_work(dream_work(h, w, opts), cfg.admission, "DeepDream", "steps, octaves or size")

    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        out = deepdream(net, img, opts, progress=progress, cancel=cancel)
        return _encode(out, fmt, quality)

    return run


def prepare_saliency(
    cfg: SlowConfig,
    image: bytes,
    method: str,
    target: int | str | None,
    output: str,
    params: Mapping[str, Any] | None,
    top_k: int,
    backbone: str | None,
) -> JobFunction:
    """A saliency map as a job; see ``service.core.saliency.explain``. Result bytes by ``output``:

    ``overlay`` / ``heatmap``: PNG; ``float32``: raw little-endian float32, row-major (H, W);
    ``npy``: a NumPy .npy file; ``json``: ``{"width", "height", "map": [[...]]}`` rounded to 1e-4.
    ``JobOutput.extra`` carries ``method``, ``target``, ``predictions`` and ``map`` (the float array).
    """
    from service.core.saliency import METHODS, explain
    from service.core.saliency.registry import get_method

    if method not in METHODS:
        raise InvalidArgument(
            f"Unknown saliency method {quoted(method)}. Known methods: {', '.join(METHODS)}."
        )
    # The strict parser, not the core's lenient one (which reads "16" as 16 for the CLI's k=v pairs).
    parsed = build_options(get_method(method).options, params, what=f"saliency method {method!r}")
    if output not in SALIENCY_OUTPUTS:
        raise InvalidArgument(
            f"Unknown saliency output {quoted(output)}; use one of {', '.join(SALIENCY_OUTPUTS)}."
        )
    if not 1 <= top_k <= 1000:
        raise InvalidArgument(f"top_k must be between 1 and 1000, got {top_k}.")
    img = _decode_within(image, cfg)
    work = saliency_work(method, parsed, img.shape[0], img.shape[1])
    check_work(work, cfg.admission, "saliency", "the method's samples, steps, masks or windows")
    net = _backbone(cfg, backbone)
    args = dataclasses.asdict(parsed)

    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        res = explain(
            net, [img], method, target=target, params=args, top_k=top_k, cancel=cancel, progress=progress
        )
        smap = np.asarray(res.maps[0], dtype=np.float32)
        h, w = smap.shape
        extra = {"method": method, "target": res.targets[0], "predictions": res.predictions[0], "map": smap}
        return JobOutput(*_saliency_bytes(img, smap, output), w, h, extra)

    return run


def gatys_job(
    cfg: SlowConfig,
    content: bytes,
    styles: list[bytes],
    options: Mapping[str, Any] | None,
    fmt: str,
    quality: int,
    backbone: str | None,
) -> JobWork:
    """``prepare_gatys`` plus the same request as data, for the shared queue (``jobs/work.py``)."""
    fn = prepare_gatys(cfg, content, styles, options, fmt, quality, backbone)
    params = {"options": dict(options or {}), "fmt": fmt, "quality": quality, "backbone": backbone}
    return JobWork(JobSpec("gatys", params, {"content": [content], "style": list(styles)}), fn)


def deepdream_job(
    cfg: SlowConfig,
    image: bytes,
    options: Mapping[str, Any] | None,
    fmt: str,
    quality: int,
    backbone: str | None,
    guide: bytes | None = None,
) -> JobWork:
    """``prepare_deepdream`` plus the same request as data, for the shared queue."""
    fn = prepare_deepdream(cfg, image, options, fmt, quality, backbone, guide)
    params = {"options": dict(options or {}), "fmt": fmt, "quality": quality, "backbone": backbone}
    images = {"image": [image], **({"guide": [guide]} if guide else {})}
    return JobWork(JobSpec("deepdream", params, images), fn)


def work_from_spec(cfg: SlowConfig, spec: JobSpec) -> JobFunction:
    """The job function of a stored spec (a worker of the shared queue), through the same checks as the
    replica that accepted it: a worker with tighter limits refuses the job with the same typed error."""
    if spec.kind == "attack":
        return attack_from_spec(cfg, spec)
    p = spec.params
    args = (p.get("options"), str(p["fmt"]), int(p["quality"]), p.get("backbone"))
    if spec.kind == "gatys":
        return prepare_gatys(cfg, spec.image("content") or b"", spec.images.get("style", []), *args)
    if spec.kind == "deepdream":
        return prepare_deepdream(cfg, spec.image("image") or b"", *args, spec.image("guide"))
    raise InvalidArgument(f"A worker of the shared queue cannot run {quoted(spec.kind)} jobs.")


def _saliency_bytes(image: np.ndarray, smap: np.ndarray, output: str) -> tuple[bytes, str]:
    from service.core.saliency.render import heatmap, overlay

    if output == "overlay":
        return encode_image(overlay(image, smap), "png"), "image/png"
    if output == "heatmap":
        return encode_image(heatmap(smap), "png"), "image/png"
    if output == "float32":
        return smap.astype("<f4").tobytes(), "application/octet-stream"
    if output == "npy":
        import io

        buf = io.BytesIO()
        np.save(buf, smap.astype("<f4"))
        return buf.getvalue(), "application/x-npy"
    body = {"width": int(smap.shape[1]), "height": int(smap.shape[0]), "map": np.round(smap, 4).tolist()}
    return json.dumps(body).encode(), "application/json"
