"""Tensors of the Open Inference Protocol (KServe v2): datatypes, shapes and payloads to numpy, checked.

Transport-free: the REST side (``transport/rest/v2.py``) and the gRPC side (``transport/grpc/inference.py``)
both turn what they received into ``InputTensor`` values (a header plus either raw bytes or a list of
values) and ``decode`` gives the numpy array, raising the typed errors of ``service.core.errors`` for
anything malformed, so a bad tensor reads the same over either transport (INVALID_ARGUMENT / 400).

Spec: the Open Inference Protocol, "Tensor Data Types" and "Tensor Data" in
https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md, and
the raw forms (``raw_input_contents``, row-major, no padding) in ``protos/inference/open_inference_grpc.proto``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.core.errors import InvalidArgument, quoted

# Every datatype the protocol names, with its element size in bytes (BYTES: variable, length-prefixed).
ITEM_SIZES: dict[str, int] = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "BF16": 2,
    "FP32": 4,
    "FP64": 8,
    "BYTES": 0,
}
# The ones our models take, as little-endian numpy types (the protocol's raw byte order is little-endian).
NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "FP32": np.dtype("<f4"),
}
MAX_RANK = 8  # far above what any input here takes; bounds the work of reading a hostile shape


@dataclass(frozen=True)
class TensorMeta:
    """A tensor's declared form (model metadata): -1 marks a dimension of any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class InputTensor:
    """One request input as received: the header, and its data as raw bytes or as values (JSON ``data``,
    or a protobuf ``InferTensorContents`` field), exactly one of the two."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    raw: bytes | memoryview | None = None
    values: Any = None

    def describe(self) -> str:
        return f"{self.name} ({self.datatype} {list(self.shape)})"


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    data: np.ndarray  # its shape is the tensor's shape

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.data.shape)

    def raw(self) -> bytes:
        """Row-major little-endian bytes, as the raw forms of both transports carry them."""
        return np.ascontiguousarray(self.data, dtype=NUMPY_TYPES[self.datatype]).tobytes()


def parse_shape(name: str, shape: Any) -> tuple[int, ...]:
    """A shape from the wire (JSON list or protobuf repeated int64): non-negative integers, rank <= 8."""
    if not isinstance(shape, Sequence) or isinstance(shape, str | bytes):
        raise InvalidArgument(f"Input {quoted(name)}: shape must be a list of integers, got {shape!r:.80}.")
    if len(shape) > MAX_RANK:
        raise InvalidArgument(f"Input {quoted(name)}: shape has {len(shape)} dimensions; at most {MAX_RANK}.")
    dims = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise InvalidArgument(
                f"Input {quoted(name)}: every dimension must be a non-negative integer, got {list(shape)!r:.80}."
            )
        dims.append(int(d))
    return tuple(dims)


def check_datatype(tensor: InputTensor, allowed: Sequence[str]) -> None:
    if tensor.datatype not in ITEM_SIZES:
        raise InvalidArgument(
            f"Input {quoted(tensor.name)}: unknown datatype {quoted(tensor.datatype)}; the protocol's are "
            f"{', '.join(ITEM_SIZES)}."
        )
    if tensor.datatype not in allowed:
        raise InvalidArgument(
            f"Input {quoted(tensor.name)} must be {' or '.join(allowed)}, got {tensor.datatype}."
        )


def check_shape(tensor: InputTensor, expected: Sequence[int]) -> None:
    """``expected``: the metadata shape, -1 for any size."""
    ok = len(tensor.shape) == len(expected) and all(
        e == -1 or d == e for d, e in zip(tensor.shape, expected, strict=True)
    )
    if not ok:
        form = "[" + ", ".join("any" if e == -1 else str(e) for e in expected) + "]"
        raise InvalidArgument(
            f"Input {quoted(tensor.name)} must have shape {form}, got {list(tensor.shape)}."
        )


def decode(tensor: InputTensor) -> np.ndarray:
    """The tensor as a numpy array of its shape (a read-only view of raw bytes, no copy), once its datatype
    and shape were checked (``check_datatype``, ``check_shape`` and any size limits, before any data is
    touched). Raises ``InvalidArgument`` when the data does not match the header."""
    dtype = NUMPY_TYPES[tensor.datatype]
    count = math.prod(tensor.shape)
    if (tensor.raw is None) == (tensor.values is None):
        raise InvalidArgument(
            f"Input {quoted(tensor.name)} needs its data exactly once: either as values or as raw bytes."
        )
    if tensor.raw is not None:
        expected = count * dtype.itemsize
        if len(tensor.raw) != expected:
            raise InvalidArgument(
                f"Input {tensor.describe()} needs {expected} bytes of raw data ({count} x {dtype.itemsize}), "
                f"got {len(tensor.raw)}."
            )
        array = np.frombuffer(tensor.raw, dtype=dtype, count=count)
        if tensor.datatype == "BOOL" and array.size and int(array.view(np.uint8).max()) > 1:
            raise InvalidArgument(f"Input {quoted(tensor.name)}: BOOL bytes must be 0 or 1.")
        return array.reshape(tensor.shape)
    return _from_values(tensor, dtype, count)


def _from_values(tensor: InputTensor, dtype: np.dtype[Any], count: int) -> np.ndarray:
    """JSON ``data`` (nested or flat, row-major) or a protobuf repeated field, of the right kind of number."""
    try:
        array = np.asarray(tensor.values)
    except (ValueError, TypeError):  # ragged nesting, mixed types
        raise InvalidArgument(
            f"Input {quoted(tensor.name)}: data must be a (nested) list of numbers of one kind."
        ) from None
    if array.size != count:
        raise InvalidArgument(f"Input {tensor.describe()} needs {count} values, got {array.size}.")
    kind = array.dtype.kind
    if count and tensor.datatype == "BOOL" and kind != "b":
        raise InvalidArgument(f"Input {quoted(tensor.name)} is BOOL: its data must be true or false.")
    if count and tensor.datatype == "UINT8":
        if kind not in "iu":
            raise InvalidArgument(f"Input {quoted(tensor.name)} is UINT8: its data must be integers 0..255.")
        if int(array.min()) < 0 or int(array.max()) > 255:
            raise InvalidArgument(f"Input {quoted(tensor.name)} is UINT8: values must be between 0 and 255.")
    if count and tensor.datatype == "FP32" and kind not in "iuf":
        raise InvalidArgument(f"Input {quoted(tensor.name)} is FP32: its data must be numbers.")
    return array.astype(dtype, copy=False).reshape(tensor.shape)


def scalar(tensor: InputTensor, allowed: str) -> float | bool:
    """A one-element input (``STRENGTH`` FP32 [1], ``PRESERVE_COLOR`` BOOL [1]) as a Python value."""
    check_datatype(tensor, (allowed,))
    check_shape(tensor, (1,))
    value = decode(tensor).reshape(-1)[0]
    return bool(value) if allowed == "BOOL" else float(value)
