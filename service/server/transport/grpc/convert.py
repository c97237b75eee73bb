"""Request and response conversions the servicer's RPC modules share (servicer.py, features.py)."""

from __future__ import annotations

import time
from typing import Any

import grpc
from google.protobuf import struct_pb2

from service.api.v1 import atelier_pb2 as pb
from service.core.errors import InvalidArgument
from service.server.plane.painting import Region

FORMATS = {
    pb.IMAGE_FORMAT_UNSPECIFIED: "png",
    pb.IMAGE_FORMAT_PNG: "png",
    pb.IMAGE_FORMAT_JPEG: "jpeg",
    pb.IMAGE_FORMAT_WEBP: "webp",
}


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline on the monotonic clock the data plane uses; None without one."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def image_format(value: int) -> str:
    # An enum value this server does not know (a newer client) falls back to PNG rather than failing.
    return FORMATS.get(value, "png")  # type: ignore[call-overload]


def quality_of(value: int) -> int:
    return value or 90


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_values(value.struct_value)
    if kind == "list_value":
        return [_value(v) for v in value.list_value.values]
    if kind in (None, "null_value"):
        return None
    return getattr(value, kind)  # number_value (a float: the options parser decides), string, bool


def struct_values(message: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as plain Python values for the options parser. Not ``json_format.MessageToDict``: it
    raises ``ValueError`` on NaN and Infinity, which must reach the parser and be refused as bad input."""
    return {key: _value(v) for key, v in message.fields.items()}


def predictions_of(preds: Any) -> list[pb.Prediction]:
    return [pb.Prediction(index=p.index, label=p.label, probability=p.probability) for p in preds]


def blend_of(weights: Any) -> list[tuple[str, float]] | None:
    """``repeated StyleWeight`` as (style, weight) pairs for the blend parser; None when empty (no blend)."""
    return [(w.style, w.weight) for w in weights] or None


def region_of(request: pb.StylizeRequest) -> Region | None:
    """A Stylize request's mask and background; None when it asks for no mask (a background alone is
    refused: it paints outside a mask)."""
    background, outside = request.background or None, blend_of(request.background_blend)
    if not request.mask and not request.mask_saliency:
        if background is not None or outside is not None:
            raise InvalidArgument(
                "background and background_blend paint outside a mask: send mask or mask_saliency."
            )
        return None
    return Region(request.mask or None, request.mask_saliency, background, outside)
