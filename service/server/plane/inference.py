"""The Open Inference Protocol (KServe v2) over the fast style models: one v2 model per served style.

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
| ``STYLIZED`` (output) | ``UINT8`` | ``[N, H, W, 3]`` | same size as the input (never resized) |

Spec: https://github.com/kserve/open-inference-protocol (specification/protocol/inference_rest.md,
inference_grpc.md); the health and metadata answers follow its "Server Ready", "Model Metadata" sections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from service import __version__
from service.core.errors import ImageTooLarge, InvalidArgument, NotFound, UnknownModel, quoted
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

SERVER_NAME = "atelier"
# Triton's name for the HTTP binary tensor extension (Inference-Header-Content-Length), which we speak.
EXTENSIONS = ("binary_tensor_data",)
PLATFORM = "onnx_onnxv1"
IMAGE, STRENGTH, PRESERVE_COLOR, STYLIZED = "IMAGE", "STRENGTH", "PRESERVE_COLOR", "STYLIZED"
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

    def style(self, name: str, version: str = "") -> StyleInfo:
        """The served model ``name`` (``UnknownModel`` listing the served ones), at ``version`` if given
        (``NotFound`` naming the version served: one version of each model is loaded at a time)."""
        # NotReady / ShuttingDown when not serving; reversed, so a single-style net wins over a multi-style
        # net's style of its name (the listing puts it first), as a Stylize call's name resolves
        styles = {s.name: s for s in reversed(self.plane.list_styles())}
        info = styles.get(name)
        if info is None:
            raise UnknownModel("model", name, styles)
        if version and version != info.version:
            raise NotFound(
                f"Model {quoted(name)} has no version {quoted(version)}; this server has version "
                f"{info.version!r}."
            )
        return info

    def model_ready(self, name: str, version: str = "") -> bool:
        """True when the server is ready and serves ``name`` (at ``version``); raises for an unknown one."""
        if not self.plane.ready:
            return False
        self.style(name, version)
        return True

    def metadata(self, name: str, version: str = "") -> ModelMetadata:
        info = self.style(name, version)
        props = {
            "style": info.style,
            "title": info.title,
            "artist": info.artist,
            "arch": info.arch,
            "provider": info.provider,
            "precision": info.precision,
            "image_datatypes": ",".join(IMAGE_TYPES),  # IMAGE takes FP32 in [0, 1] too
        }
        return ModelMetadata(info.name, (info.version,), PLATFORM, INPUTS, OUTPUTS, props)

    # --- inference -----------------------------------------------------------------------------------
    def check_header(self, inputs: Sequence[InputTensor], outputs: Sequence[str] = ()) -> None:
        """Every check that needs no tensor data: names, datatypes, shapes and the size limits, so an
        oversized request is refused before its bytes are looked at (and before any work is queued)."""
        known = {t.name for t in INPUTS}
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

    def decode_inputs(self, inputs: Sequence[InputTensor]) -> tuple[np.ndarray, float, bool]:
        """The (N, H, W, 3) uint8 images, strength and preserve_color, once ``check_header`` passed.
        Blocking numpy work (a copy for FP32): the transports run it off the event loop when it is large."""
        by_name = {t.name: t for t in inputs}
        image = by_name[IMAGE]
        pixels = decode(image)
        if image.datatype == "FP32":
            if not np.isfinite(pixels).all() or pixels.min() < 0.0 or pixels.max() > 1.0:
                raise InvalidArgument(f"{IMAGE} as FP32 must hold finite values between 0 and 1.")
            pixels = np.rint(pixels * np.float32(255.0)).astype(np.uint8)
        strength = scalar(by_name[STRENGTH], "FP32") if STRENGTH in by_name else 1.0
        preserve = scalar(by_name[PRESERVE_COLOR], "BOOL") if PRESERVE_COLOR in by_name else False
        return pixels, float(strength), bool(preserve)

    async def infer(
        self,
        name: str,
        version: str,
        images: np.ndarray,
        strength: float = 1.0,
        preserve_color: bool = False,
        deadline: float | None = None,
    ) -> InferResult:
        """Stylise each image of ``images`` (N, H, W, 3) uint8 through ``plane.stylize``, concurrently, so
        same-size images share a batch when the provider batches (``batching.py``)."""
        info = self.style(name, version)
        tasks = [
            asyncio.ensure_future(
                self.plane.stylize(
                    np.ascontiguousarray(image),
                    info.name,
                    strength,
                    preserve_color,
                    fmt=None,  # pixels back, no encoding
                    deadline=deadline,
                )
            )
            for image in images
        ]
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
            info.name,
            info.version,
            [OutputTensor(STYLIZED, "UINT8", out)],
            [r.batch_size for r in results],
        )
