"""Bodies of the Open Inference Protocol's REST infer call: the JSON request (with the binary tensor data
extension) in, the JSON (or JSON + binary) response out.

JSON: the inference request and response objects of the Open Inference Protocol
(https://github.com/kserve/open-inference-protocol, specification/protocol/inference_rest.md). Binary
tensor data, the extension tritonclient's HTTP client uses by default (Triton's
docs/protocol/extension_binary_data.md): the body is the JSON header, whose length in bytes is the
``Inference-Header-Content-Length`` header, followed by the raw tensors, one after the other in the order
of the inputs that carry ``"parameters": {"binary_data_size": n}``; an output is sent the same way when
the request asks for it (output ``"parameters": {"binary_data": true}``, or request
``"parameters": {"binary_data_output": true}``), else as a flat JSON ``data`` list.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from service.core.errors import InvalidArgument, quoted
from service.server.plane.inference import InferResult
from service.server.plane.tensors import InputTensor, parse_shape

HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class Requested:
    """An output the request names, and whether it wants it as binary data."""

    name: str
    binary: bool


@dataclass(frozen=True)
class InferBody:
    id: str | None
    inputs: list[InputTensor]
    outputs: list[Requested]  # empty: every output, binary if ``binary_output``
    binary_output: bool
    deadline: float | None  # from the request's "timeout" parameter (microseconds, as Triton's)
    has_values: bool  # some input came as JSON values (numpy work worth a worker thread)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {type(value).__name__}.")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{what} must be a non-empty string.")
    return value


def _flag(params: dict[str, Any], key: str, what: str) -> bool:
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{what} parameter {key!r} must be true or false, got {value!r:.40}.")
    return value


def _size(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{what} must be a non-negative integer, got {value!r:.40}.")
    return value


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary data after it (``Inference-Header-Content-Length``)."""
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidArgument(f"{HEADER_LENGTH} must be a byte count, got {quoted(header_length, 40)}.")
    n = int(text)
    if not 0 < n <= len(body):
        raise InvalidArgument(f"{HEADER_LENGTH} is {n}, but the body has {len(body)} bytes.")
    view = memoryview(body)
    return body[:n], view[n:]


def parse_infer(body: bytes, header_length: str | None) -> InferBody:
    """The request's inputs with their data (JSON values or binary slices), requested outputs and options.
    Every malformed body is ``InvalidArgument`` naming what is wrong."""
    header, binary = split_body(body, header_length)
    if not header.strip():
        raise InvalidArgument('The request body is empty; send an inference request: {"inputs": [...]}.')
    try:
        doc = json.loads(header)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"The inference request is not valid JSON ({str(exc)[:120]}).") from None
    doc = _object(doc, "The inference request")
    params = _object(doc.get("parameters"), "The request's parameters")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument("The request id must be a string.")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidArgument('The inference request needs "inputs": a non-empty list of tensors.')
    if len(raw_inputs) > 16:
        raise InvalidArgument(f"The request has {len(raw_inputs)} inputs; at most 16 are read.")
    inputs: list[InputTensor] = []
    offset = 0
    has_values = False
    for i, item in enumerate(raw_inputs):
        entry = _object(item, f"Input {i}")
        name = _string(entry.get("name"), f"Input {i}'s name")
        datatype = _string(entry.get("datatype"), f"Input {quoted(name)}'s datatype")
        shape = parse_shape(name, entry.get("shape"))
        tparams = _object(entry.get("parameters"), f"Input {quoted(name)}'s parameters")
        size = tparams.get("binary_data_size")
        if size is not None:
            if "data" in entry:
                raise InvalidArgument(f"Input {quoted(name)} has both binary data and a JSON data list.")
            n = _size(size, f"Input {quoted(name)}'s binary_data_size")
            if offset + n > len(binary):
                raise InvalidArgument(
                    f"Input {quoted(name)} declares {n} bytes of binary data, but only {len(binary) - offset} "
                    f"follow the JSON header (send the header's length in {HEADER_LENGTH})."
                )
            inputs.append(InputTensor(name, datatype, shape, raw=binary[offset : offset + n]))
            offset += n
        else:
            if "data" not in entry:
                raise InvalidArgument(f'Input {quoted(name)} has no "data" (nor binary_data_size).')
            inputs.append(InputTensor(name, datatype, shape, values=entry["data"]))
            has_values = True
    if offset != len(binary):
        raise InvalidArgument(
            f"{len(binary) - offset} bytes follow the JSON header that no input's binary_data_size accounts for."
        )
    outputs = []
    for i, item in enumerate(_list(doc.get("outputs"), "outputs")):
        entry = _object(item, f"Output {i}")
        name = _string(entry.get("name"), f"Output {i}'s name")
        oparams = _object(entry.get("parameters"), f"Output {quoted(name)}'s parameters")
        if oparams.get("classification"):
            raise InvalidArgument("The classification extension is not supported: the output is an image.")
        outputs.append(Requested(name, _flag(oparams, "binary_data", f"Output {quoted(name)}'s")))
    return InferBody(
        request_id,
        inputs,
        outputs,
        _flag(params, "binary_data_output", "The request's"),
        _deadline(params.get("timeout")),
        has_values,
    )


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 16:
        raise InvalidArgument(f'"{what}" must be a list of at most 16 entries.')
    return value


def _deadline(timeout_us: Any) -> float | None:
    if timeout_us is None:
        return None
    if isinstance(timeout_us, bool) or not isinstance(timeout_us, int) or timeout_us <= 0:
        raise InvalidArgument(
            f"The timeout parameter is in microseconds, a positive integer; got {timeout_us!r:.40}."
        )
    return time.monotonic() + min(timeout_us, 10**12) / 1e6


def infer_response(body: InferBody, result: InferResult) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary tensors follow it (else None)."""
    wanted = body.outputs or [Requested(t.name, body.binary_output) for t in result.outputs]
    by_name = {t.name: t for t in result.outputs}
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for req in wanted:
        tensor = by_name[req.name]
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if req.binary:
            raw = tensor.raw()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = tensor.data.reshape(-1).tolist()
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": result.model, "model_version": result.version, "outputs": entries}
    if body.id is not None:
        doc["id"] = body.id
    header = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)
