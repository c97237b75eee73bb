"""What a fast stylize call paints, and the renders after decoding: one style, a blend, or two by region.

``choose_styles`` resolves a call before any work: its ``style`` or ``blend`` (a multi-style net's weights,
``service.core.stylize.blend``) through ``StyleEngine.choose``, and for a masked call (``Region``) the
background's style or blend. ``Painter.paint`` then renders a decoded, prepared image:

* each style choice is one micro-batched run (``MicroBatcher.submit`` with the choice's weights, so
  requests of different blends of one net share a run), or the engine's own unbatched path (strength 0,
  tiled images);
* with a mask, the foreground choice paints where the mask is 1 and the background (another style or
  blend; by default the photo itself, unstyled) where it is 0, joined by a feathered edge
  (``service.core.stylize.regions.composite``). The two renders are submitted together, so on a batching
  provider they share one run when they use the same net;
* the mask is an uploaded image (decoded with the photo, under the same limits) or ``saliency``: the
  Grad-CAM map of the top class on the embedded EfficientNet-Lite0 (``regions.saliency_mask``), run on
  the fast executor like Classify.

Bad input (a blend, a mask of another aspect ratio, a background without a mask) is an ``InvalidArgument``
raised before the call is admitted, or while decoding, never from inside a batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from service.core.errors import InvalidArgument
from service.core.imageio import encode_image
from service.core.stylize.blend import Blend, parse_blend
from service.core.stylize.regions import composite, decode_mask, fit_mask, saliency_mask
from service.server.plane.config import PlaneConfig
from service.server.plane.steps import decode_prepare, stylize_alone

if TYPE_CHECKING:
    from service.core.stylize.engine import StyleChoice, StyleEngine, StylizeOptions
    from service.server.plane.dataplane import DataPlane

BlendInput = str | Mapping[str, Any] | Sequence[Any] | Blend
PHOTO = "photo"  # the background label of a masked call that keeps the photo outside the mask
SALIENCY_BACKBONE = "efficientnet_lite0"  # the embedded backbone: no weights file is ever needed
T = TypeVar("T")


@dataclass(frozen=True)
class Region:
    """Paint by region: the mask (an uploaded image, or ``saliency``) and what paints outside it."""

    mask: bytes | None = None  # greyscale or alpha image, white/opaque = the subject; the photo's aspect
    saliency: bool = False  # the Grad-CAM map of the top class instead of an uploaded mask
    background: str | None = None  # the style painted outside the mask
    background_blend: BlendInput | None = None  # or a blend; neither: the photo itself, unstyled

    def check(self) -> None:
        if (self.mask is not None) == self.saliency:
            raise InvalidArgument("Send a mask image or ask for the saliency mask (mask=saliency), not both.")
        if self.background is not None and self.background_blend is not None:
            raise InvalidArgument("Send a background style or a background blend, not both.")


@dataclass(frozen=True)
class Choices:
    """A call's resolved styles: the foreground (the whole image without a mask) and the background."""

    foreground: StyleChoice
    background: StyleChoice | None  # None: the photo (or no mask at all)
    region: Region | None

    @property
    def background_label(self) -> str:
        if self.region is None:
            return ""
        return self.background.style if self.background is not None else PHOTO


def as_blend(value: BlendInput | None) -> Blend | None:
    if value is None or isinstance(value, Blend):
        return value
    return parse_blend(value)


def choose_styles(
    engine: StyleEngine,
    style: str | None,
    blend: BlendInput | None,
    model: str | None,
    region: Region | None,
) -> Choices:
    """Resolve a call's styles (``UnknownModel`` / ``InvalidArgument`` with the reason) before any work."""
    parsed = as_blend(blend)
    if style is not None and parsed is not None:
        raise InvalidArgument("Send a style or a blend, not both.")
    if style is None and parsed is None:
        raise InvalidArgument(
            "Name a style (GET /v1/styles) or send a blend, e.g. starry_night:0.7,the_scream:0.3."
        )
    foreground = engine.choose(style=style, blend=parsed, net=model)
    background = None
    if region is not None:
        region.check()
        bg_blend = as_blend(region.background_blend)
        if region.background is not None or bg_blend is not None:
            background = engine.choose(style=region.background, blend=bg_blend)
    return Choices(foreground, background, region)


def decode_with_mask(
    engine: StyleEngine, data: bytes | np.ndarray, opts: Any, config: PlaneConfig, region: Region | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``decode_prepare``, then an uploaded mask under the same image limits, resized to the prepared
    photo (its aspect ratio checked): one codec step."""
    prepared = decode_prepare(engine, data, opts, config)
    if region is None or region.mask is None:
        return prepared, None
    return prepared, fit_mask(decode_mask(region.mask, config.limits), *prepared.shape[:2])


def saliency_for(config: PlaneConfig, prepared: np.ndarray) -> np.ndarray:
    from service.core.backbones import get_backbone

    net = get_backbone(SALIENCY_BACKBONE, config.device, config.backbone_weights)
    return saliency_mask(net, prepared)


@dataclass
class _Part:
    image: np.ndarray
    finished: bool  # the engine's own path has applied strength and colour already
    queue_s: float
    run_s: float
    batch: int


def finish_encode_parts(
    engine: StyleEngine,
    prepared: np.ndarray,
    parts: list[_Part],
    mask: np.ndarray | None,
    opts: StylizeOptions,
    fmt: str | None,
    quality: int,
) -> tuple[np.ndarray, bytes]:
    """Strength and colour on each raw render, the composite when masked, the encoding: one codec step."""
    done = [p.image if p.finished else engine.finish(prepared, p.image, opts) for p in parts]
    outside = done[1] if len(done) > 1 else prepared  # the background render, or the photo
    out = done[0] if mask is None else composite(done[0], outside, mask)
    return out, (encode_image(out, fmt, quality) if fmt is not None else b"")


class Painter:
    """The renders of one admitted, decoded call (``DataPlane.stylize`` decodes and admits)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def _in(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def mask(self, choices: Choices, prepared: np.ndarray) -> tuple[np.ndarray | None, float]:
        """The saliency mask, when asked for, and its seconds (an uploaded mask came with the decode)."""
        region = choices.region
        if region is None or not region.saliency:
            return None, 0.0
        start = time.monotonic()
        mask = await self._in(self.plane.fast_executor, saliency_for, self.plane.config, prepared)
        took = time.monotonic() - start
        self.plane.metrics.inference_duration.labels(model=SALIENCY_BACKBONE, provider="torch").observe(took)
        return mask, took

    async def _render(
        self, engine: StyleEngine, prepared: np.ndarray, choice: StyleChoice, opts: StylizeOptions
    ) -> _Part:
        plane = self.plane
        key = plane.models.batch_key(engine, choice.net)  # pins the run to this call's engine (reloads)
        if engine.batchable(prepared, opts):  # one run over the whole image: share it
            res = await plane.batcher.submit(key, prepared, choice.weights)
            return _Part(res.output, False, res.queue_wait_s, res.run_s, res.batch_size)
        # the engine's own path, alone: strength 0 skips the network, large images are tiled
        out, runs, run_s = await self._in(
            plane.fast_executor, stylize_alone, engine, choice.net, prepared, opts, choice.weights
        )
        if runs and plane.batcher.observer is not None:
            plane.batcher.observer(key, 1, run_s)
        return _Part(out, True, 0.0, run_s, min(runs, 1))

    async def paint(
        self,
        engine: StyleEngine,
        prepared: np.ndarray,
        mask: np.ndarray | None,
        choices: Choices,
        opts: StylizeOptions,
        fmt: str | None,
        quality: int,
    ) -> tuple[np.ndarray, bytes, dict[str, float], int]:
        """(pixels, encoded bytes, timings in seconds: queue, inference, encode; the foreground's batch)."""
        wanted = [choices.foreground] + ([choices.background] if choices.background is not None else [])
        parts = await asyncio.gather(*(self._render(engine, prepared, c, opts) for c in wanted))
        start = time.monotonic()
        out, data = await self._in(
            self.plane.codec_executor, finish_encode_parts, engine, prepared, parts, mask, opts, fmt, quality
        )
        for choice in wanted:
            self.plane.metrics.style_requests.labels(model=choice.net, style=choice.metric_style).inc()
        timings = {
            "queue": max(p.queue_s for p in parts),
            "inference": sum(p.run_s for p in parts),
            "encode": time.monotonic() - start,
        }
        return out, data, timings, parts[0].batch
