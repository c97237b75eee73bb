"""The Open Inference Protocol (KServe v2) over the fast style models: one v2 model per served style,
and one per multi-style net, whose ``STYLE_WEIGHTS`` input blends its styles.

Both v2 transports call this and only this (REST ``transport/rest/v2.py``, gRPC
``transport/grpc/inference.py``); it calls the data plane's ``stylize`` with pixels instead of an encoded
image, so admission (the fast queue's bound), micro-batching, the deadline, readiness and the
inference metrics are exactly those of our own Stylize, and so are the pixels.

Models: the names and versions ``ListStyles`` / ``GET /v1/styles`` lists (``starry_night`` version ``1``,
...), platform ``onnx_onnxv1``. Tensors (``docs/v2.md``):

| tensor | datatype | shape | |
|---|---|---|---|
| ``IMAGE`` (input) | ``UINT8`` (or ``FP32`` in [0, 1]) | ``[N, H, W, 3]`` RGB, NHWC | 1 <= N <= batch_max_size, 16 <= H, W <= max_side_stylize, H x W <= max_image_pixels |
| ``STRENGTH`` (optional input) | ``FP32`` | ``[1]`` | 0..1, default 1: blend with the photo |
| ``PRESERVE_COLOR`` (optional input) | ``BOOL`` | ``[1]`` | default false: keep the photo's colours |
| ``STYLE_WEIGHTS`` (input of a multi-style net, required there) | ``FP32`` | ``[S]`` or ``[N, S]`` | a weight per style, in the order of the metadata's ``styles`` property: one blend for every image, or one per image |
| ``STYLIZED`` (output) | ``UINT8`` | ``[N, H, W, 3]`` | same size as the input (never resized) |

A multi-style net (``multi``) is a v2 model under its own name, so its styles stay reachable when a
single-style net has the same style name (``starry_night`` names the single net, as in Stylize). Its
weights are checked as a Stylize blend is (finite, >= 0, not all zero; divided by their sum), so a
one-hot row paints that style.

Spec: https://github.com/kserve/open-inference-protocol (specification/protocol/inference_rest.md,
inference_grpc.md); the health and metadata answers follow its "Server Ready", "Model Metadata" sections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from service import __version__
from service.core.arbitrary.engine import MODEL_NAME as ARBITRARY
from service.core.errors import ImageTooLarge, InvalidArgument, NotFound, UnknownModel, quoted
from service.core.stylize.blend import MAX_BLEND_STYLES
from service.core.stylize.engine import MIN_SIDE
from service.server.plane.tensors import (
    InputTensor,
    OutputTensor,
    TensorMeta,
    check_datatype,
    check_shape,
    decode,
    scalar,
)

if TYPE_CHECKING:
    from service.core.stylize.engine import StyleInfo
    from service.server.plane.dataplane import DataPlane
    from service.server.plane.results import StylizeResult

SERVER_NAME = "atelier"
# Triton's name for the HTTP binary tensor extension (Inference-Header-Content-Length), which we speak.
EXTENSIONS = ("binary_tensor_data",)
PLATFORM = "onnx_onnxv1"
IMAGE, STRENGTH, PRESERVE_COLOR, STYLIZED = "IMAGE", "STRENGTH", "PRESERVE_COLOR", "STYLIZED"
STYLE_WEIGHTS, STYLE_IMAGE = "STYLE_WEIGHTS", "STYLE_IMAGE"
IMAGE_TYPES = ("UINT8", "FP32")
INPUTS = (
    TensorMeta(IMAGE, "UINT8", (-1, -1, -1, 3)),
    TensorMeta(STRENGTH, "FP32", (1,)),
    TensorMeta(PRESERVE_COLOR, "BOOL", (1,)),
)
OUTPUTS = (TensorMeta(STYLIZED, "UINT8", (-1, -1, -1, 3)),)


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class V2Model:
    """A served v2 model: a style, a multi-style net (``styles``: its styles in vector order) or the
    arbitrary-style levels (``painting``: a ``STYLE_IMAGE`` input)."""

    name: str
    version: str
    properties: dict[str, str]
    styles: tuple[str, ...] = ()
    painting: bool = False

    @classmethod
    def of_style(cls, info: StyleInfo, styles: tuple[str, ...] = ()) -> V2Model:
        props = {
            "style": info.style,
            "title": info.title,
            "artist": info.artist,
            "arch": info.arch,
            "provider": info.provider,
            "precision": info.precision,
        }
        if styles:
            props["styles"] = ",".join(styles)  # STYLE_WEIGHTS' order
        return cls(info.name, info.version, props, styles)

    @property
    def inputs(self) -> tuple[TensorMeta, ...]:
        if self.styles:
            return (*INPUTS, TensorMeta(STYLE_WEIGHTS, "FP32", (-1, len(self.styles))))
        if self.painting:
            return (*INPUTS, TensorMeta(STYLE_IMAGE, "UINT8", (1, -1, -1, 3)))
        return INPUTS


@dataclass(frozen=True)
class Decoded:
    """An infer request's inputs as numpy and Python values, once checked."""

    pixels: np.ndarray  # (N, H, W, 3) uint8
    strength: float = 1.0
    preserve_color: bool = False
    weights: np.ndarray | None = None  # (N, S) float32 for a multi-style net
    painting: np.ndarray | None = None  # (H, W, 3) uint8 for the arbitrary-style model


@dataclass(frozen=True)
class InferResult:
    model: str
    version: str
    outputs: list[OutputTensor]
    batch_sizes: list[int]  # the ONNX Runtime batch each image ran in (the micro-batcher's doing)


class InferenceModels:
    """The v2 view of a ``DataPlane``: metadata, readiness and ``infer``. Raises the core's typed errors
    (``UnknownModel`` NOT_FOUND / 404, ``InvalidArgument`` 400, ``ImageTooLarge`` 413, ...)."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    # --- health and metadata -------------------------------------------------------------------------
    def server_metadata(self) -> tuple[str, str, tuple[str, ...]]:
        return SERVER_NAME, __version__, EXTENSIONS

    @property
    def ready(self) -> bool:
        return self.plane.ready

    def not_ready_reason(self) -> str:
        return self.plane.not_ready_reason or ""

    def model(self, name: str, version: str = "") -> V2Model:
        """The served model ``name`` (``UnknownModel`` listing the served ones), at ``version`` if given
        (``NotFound`` naming the version served: one version of each model is loaded at a time)."""
        # NotReady / ShuttingDown when not serving; reversed, so a single-style net wins over a multi-style
        # net's style of its name (the listing puts it first), as a Stylize call's name resolves
        served = {s.name: V2Model.of_style(s) for s in reversed(self.plane.list_styles())}
        engine = self.plane.engine
        nets = [] if engine is None else [(i, engine.net_styles(i.name)) for i in engine.models()]
        for info, styles in nets:
            if styles and info.name not in served:  # a style of that name keeps it (a Stylize name)
                served[info.name] = V2Model.of_style(info, styles)
        levels = self.plane.arbitrary.engine
        if levels is not None and levels.installed and ARBITRARY not in served:
            props = {"arch": "wct", "levels": levels.version, "provider": levels.provider}
            served[ARBITRARY] = V2Model(ARBITRARY, levels.version, props, painting=True)
        model = served.get(name)
        if model is None:
            raise UnknownModel("model", name, served)
        if version and version != model.version:
            raise NotFound(
                f"Model {quoted(name)} has no version {quoted(version)}; this server has version "
                f"{model.version!r}."
            )
        return model

    def model_ready(self, name: str, version: str = "") -> bool:
        """True when the server is ready and serves ``name`` (at ``version``); raises for an unknown one."""
        if not self.plane.ready:
            return False
        self.model(name, version)
        return True

    def metadata(self, name: str, version: str = "") -> ModelMetadata:
        model = self.model(name, version)
        props = {**model.properties, "image_datatypes": ",".join(IMAGE_TYPES)}  # IMAGE takes FP32 too
        return ModelMetadata(model.name, (model.version,), PLATFORM, model.inputs, OUTPUTS, props)

    # --- inference -----------------------------------------------------------------------------------
    def check_header(
        self, model: V2Model, inputs: Sequence[InputTensor], outputs: Sequence[str] = ()
    ) -> None:
        """Every check that needs no tensor data: names, datatypes, shapes and the size limits, so an
        oversized request is refused before its bytes are looked at (and before any work is queued)."""
        known = {t.name for t in model.inputs}
        names = [t.name for t in inputs]
        for name in names:
            if name not in known:
                raise InvalidArgument(
                    f"Unknown input {quoted(name)}; the inputs are {', '.join(sorted(known))} ({IMAGE} required)."
                )
        if len(set(names)) != len(names):
            raise InvalidArgument("Each input may be given once.")
        for name in outputs:
            if name != STYLIZED:
                raise InvalidArgument(f"Unknown output {quoted(name)}; the only output is {STYLIZED}.")
        image = next((t for t in inputs if t.name == IMAGE), None)
        if image is None:
            raise InvalidArgument(f"The input {IMAGE} ({' or '.join(IMAGE_TYPES)} [N, H, W, 3]) is required.")
        check_datatype(image, IMAGE_TYPES)
        check_shape(image, (-1, -1, -1, 3))
        n, h, w, _ = image.shape
        if model.styles:
            self._check_weights_header(model, inputs, n)
        if model.painting:
            self._check_painting_header(inputs)
        cfg = self.plane.config
        if not 1 <= n <= cfg.batch_max_size:
            raise InvalidArgument(f"{IMAGE} holds {n} images; one request takes 1 to {cfg.batch_max_size}.")
        if h * w > cfg.limits.max_pixels:
            raise ImageTooLarge(
                f"{IMAGE} is {w}x{h} = {h * w / 1e6:.1f} megapixels per image; the limit is "
                f"{cfg.limits.max_pixels / 1e6:.1f} megapixels."
            )
        cap = cfg.max_side_stylize
        if not (MIN_SIDE <= h <= cap and MIN_SIDE <= w <= cap):
            raise InvalidArgument(
                f"{IMAGE} is {w}x{h}; both sides must be between {MIN_SIDE} and {cap} pixels (the output "
                "has the input's size, so nothing is downscaled)."
            )

    @staticmethod
    def _check_weights_header(model: V2Model, inputs: Sequence[InputTensor], n: int) -> None:
        listed = ", ".join(model.styles)
        weights = next((t for t in inputs if t.name == STYLE_WEIGHTS), None)
        if weights is None:
            raise InvalidArgument(
                f"{model.name} is a multi-style net: send {STYLE_WEIGHTS} (FP32 [S] or [N, S]), a weight "
                f"for each of its styles in this order: {listed}."
            )
        check_datatype(weights, ("FP32",))
        s = len(model.styles)
        if tuple(weights.shape) not in ((s,), (n, s)) or s > MAX_BLEND_STYLES:
            raise InvalidArgument(
                f"{STYLE_WEIGHTS} must have shape [{s}] (one blend for every image) or [{n}, {s}] (one per "
                f"image), got {list(weights.shape)}; its styles, in order: {listed}."
            )

    def _check_painting_header(self, inputs: Sequence[InputTensor]) -> None:
        painting = next((t for t in inputs if t.name == STYLE_IMAGE), None)
        if painting is None:
            raise InvalidArgument(
                f"{ARBITRARY} paints in the style of any painting: send it as {STYLE_IMAGE} (UINT8 "
                "[1, H, W, 3], RGB), one painting for every image of the request."
            )
        check_datatype(painting, ("UINT8",))
        check_shape(painting, (1, -1, -1, 3))
        _, h, w, _ = painting.shape
        limit = self.plane.config.limits.max_pixels
        if h * w > limit:
            raise ImageTooLarge(
                f"{STYLE_IMAGE} is {w}x{h} = {h * w / 1e6:.1f} megapixels; the limit is {limit / 1e6:.1f}."
            )
        if min(h, w) < MIN_SIDE:
            raise InvalidArgument(f"{STYLE_IMAGE} is {w}x{h}; both sides must be at least {MIN_SIDE} pixels.")

    def decode_inputs(self, model: V2Model, inputs: Sequence[InputTensor]) -> Decoded:
        """The (N, H, W, 3) uint8 images, strength, preserve_color and a multi-style net's (N, S) weights,
        once ``check_header`` passed. Blocking numpy work (a copy for FP32): the transports run it off the
        event loop when it is large."""
        by_name = {t.name: t for t in inputs}
        image = by_name[IMAGE]
        pixels = decode(image)
        if image.datatype == "FP32":
            if not np.isfinite(pixels).all() or pixels.min() < 0.0 or pixels.max() > 1.0:
                raise InvalidArgument(f"{IMAGE} as FP32 must hold finite values between 0 and 1.")
            pixels = np.rint(pixels * np.float32(255.0)).astype(np.uint8)
        strength = scalar(by_name[STRENGTH], "FP32") if STRENGTH in by_name else 1.0
        preserve = scalar(by_name[PRESERVE_COLOR], "BOOL") if PRESERVE_COLOR in by_name else False
        weights = None
        if model.styles:
            rows = decode(by_name[STYLE_WEIGHTS]).reshape(-1, len(model.styles)).astype(np.float32)
            weights = np.broadcast_to(rows, (len(pixels), len(model.styles)))
        painting = decode(by_name[STYLE_IMAGE])[0] if model.painting else None
        return Decoded(pixels, float(strength), bool(preserve), weights, painting)

    async def infer(self, model: V2Model, decoded: Decoded, deadline: float | None = None) -> InferResult:
        """Stylise each image of ``decoded.pixels`` (N, H, W, 3) uint8 through ``plane.stylize``,
        concurrently, so same-size images share a batch when the provider batches (``batching.py``). A
        multi-style net's row of weights is that image's blend (validated there, as a Stylize blend)."""

        def call(i: int, image: np.ndarray) -> Awaitable[StylizeResult]:
            image = np.ascontiguousarray(image)
            if decoded.painting is not None:
                return self.plane.arbitrary.stylize(
                    image,
                    decoded.painting,
                    decoded.strength,
                    decoded.preserve_color,
                    fmt=None,
                    deadline=deadline,
                )
            blend = None
            if decoded.weights is not None:
                blend = [[name, float(w)] for name, w in zip(model.styles, decoded.weights[i], strict=True)]
            return self.plane.stylize(
                image,
                None if blend is not None else model.name,
                decoded.strength,
                decoded.preserve_color,
                fmt=None,  # pixels back, no encoding
                deadline=deadline,
                blend=blend,
                model=model.name if blend is not None else None,
            )

        tasks = [asyncio.ensure_future(call(i, image)) for i, image in enumerate(decoded.pixels)]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one failed (or the call was cancelled): the others stop too
                task.cancel()
            raise
        arrays = [r.array for r in results]
        assert all(a is not None for a in arrays)
        out = np.stack([a for a in arrays if a is not None])
        return InferResult(
            model.name,
            model.version,
            [OutputTensor(STYLIZED, "UINT8", out)],
            [r.batch_size for r in results],
        )
