"""Hypothesis strategies for every request message of ``atelier.v1.Atelier``, built from the descriptors.

Every field of a request gets a value strategy by its protobuf type (so a field added to the proto is
fuzzed without touching this file): bytes fields get image-ish bytes (random, empty, valid small PNG/JPEG
images, mutated images), strings get the names the server knows mixed with random text, numbers their full
wire range with the small values that matter weighted in, enums their values plus unknown ones (proto3
enums are open), ``Struct`` fields JSON-ish options keyed mostly by the algorithm's real option names, and
a oneof at most one member. Unset is always one of the choices.
"""

from __future__ import annotations

import io
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np
from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st
from PIL import Image

from service.api.v1 import atelier_pb2 as pb
from service.core.saliency import METHODS

SERVICE = pb.DESCRIPTOR.services_by_name["Atelier"]
KNOWN_STRINGS: dict[str, tuple[str, ...]] = {
    "style": ("starry_night", "tiny_a", "nope"),
    "method": (*METHODS, "fgsm", "pgd", "fooling", "nope"),  # saliency's and Attack's
    "gallery": ("fuzz", "fuzz.2", "../x"),
    "backbone": ("efficientnet_lite0", "vgg16", "resnet"),
    "target_label": ("tabby", "Egyptian cat", "not a class"),
}
U32, I32 = 2**32 - 1, 2**31 - 1


@cache
def small_image(width: int, height: int, fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bytes overwritten, or cut short: gets past the format sniffing, then breaks."""
    data = bytearray(base)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data)))])
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def images() -> st.SearchStrategy[bytes]:
    valid = st.builds(
        small_image,
        st.integers(8, 48),
        st.integers(8, 48),
        st.sampled_from(("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")),
        st.integers(0, 3),
    )
    return st.one_of(
        valid,
        valid.flatmap(mutated),
        st.just(b""),
        st.binary(max_size=256),
    )


def json_values(numbers_only_double: bool = True) -> st.SearchStrategy[Any]:
    """What a ``Struct`` can carry: null, bool, double (incl. NaN/Infinity), string, list, object."""
    floats = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from((0.0, 1.0, 2.0, 16.0, 32.0, 64.0, 0.5, -1.0, 1e308, math.inf, math.nan)),
        st.integers(-(2**53), 2**53).map(float),
    )
    scalars = st.one_of(st.none(), st.booleans(), floats, st.text(max_size=12))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


# Small values of the right kind for an option, by the type hint of its dataclass field (a Struct carries
# every number as a double); strings from the names the algorithms know.
PLAUSIBLE_NUMBERS: dict[str, st.SearchStrategy[int]] = {
    "max_side": st.one_of(st.just(0), st.integers(16, 256)),  # 0: the server's limit
    "quality": st.integers(0, 100),  # 0: the default
    "top_k": st.integers(0, 10),
}
ALWAYS_SET = ("size", "steps")  # Gatys' defaults (512 px, 300 steps) are above the fuzz server's limits
PLAUSIBLE_STRINGS = ("lbfgs", "adam", "noise", "content", "zeros", "blur", "block6", "block9")


def plausible_value(name: str, hint: Any) -> st.SearchStrategy[Any]:
    """A value ``name`` is likely to accept, so the server gets past parsing into planning and work."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return plausible_value(name, args[0])
    if typing.get_origin(hint) is tuple:
        item = plausible_value(name, typing.get_args(hint)[0])
        return st.lists(item, min_size=1, max_size=2)
    if hint is bool:
        return st.booleans()
    if hint is int:
        big = "size" in name or "side" in name or "scale" in name
        return st.integers(16, 64).map(float) if big else st.integers(1, 3).map(float)
    if hint is float:
        return st.floats(0.01, 1.0)
    return st.sampled_from(PLAUSIBLE_STRINGS)


def _to_struct(d: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(d)
    return s


def structs(fields: Mapping[str, Any], plausible: bool = False) -> st.SearchStrategy[struct_pb2.Struct]:
    """Options as a ``Struct``; ``fields`` maps option names to type hints (``options.settable``)."""
    names = tuple(fields)
    if plausible and names:
        always = [n for n in ALWAYS_SET if n in fields]
        chosen = st.lists(st.sampled_from(names), max_size=3, unique=True).map(lambda k: {*k, *always})
        return chosen.flatmap(
            lambda keys: st.fixed_dictionaries({k: plausible_value(k, fields[k]) for k in keys})
        ).map(_to_struct)
    keys = st.one_of(st.sampled_from(names), st.text(max_size=10)) if names else st.text(max_size=10)
    return st.dictionaries(keys, json_values(), max_size=5).map(_to_struct)


def _is_struct(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct"


def _plausible(field: FieldDescriptor, struct_fields: Mapping[str, Any]) -> st.SearchStrategy[Any] | None:
    """A value the server likely accepts for ``field``, or None to use the wild strategy."""
    t = field.type
    if t == FieldDescriptor.TYPE_BYTES:
        return st.builds(
            small_image, st.integers(16, 48), st.integers(16, 48), st.just("PNG"), st.integers(0, 3)
        )
    if t == FieldDescriptor.TYPE_STRING and field.name in KNOWN_STRINGS:
        return st.sampled_from(KNOWN_STRINGS[field.name][:-1])  # the last one of each is unknown
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_INT32):
        return PLAUSIBLE_NUMBERS.get(field.name, st.integers(0, 5))
    if t == FieldDescriptor.TYPE_FLOAT:
        return st.floats(0.0, 1.0, width=32)
    if t == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([v.number for v in field.enum_type.values])
    if t == FieldDescriptor.TYPE_MESSAGE and _is_struct(field):
        return structs(struct_fields, plausible=True)
    return None


def _scalar(
    field: FieldDescriptor, struct_fields: Mapping[str, Any], plausible: bool
) -> st.SearchStrategy[Any]:
    t = field.type
    if plausible and (strategy := _plausible(field, struct_fields)) is not None:
        return strategy
    if t == FieldDescriptor.TYPE_BYTES:
        return images()
    if t == FieldDescriptor.TYPE_STRING:
        known = KNOWN_STRINGS.get(field.name, ())
        return st.one_of(st.sampled_from(known), st.text(max_size=20)) if known else st.text(max_size=20)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.one_of(st.integers(0, 1100), st.integers(0, U32))
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.integers(-2, 1100), st.integers(-(2**31), I32))
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        if t == FieldDescriptor.TYPE_FLOAT:
            return st.one_of(st.floats(-0.5, 1.5, width=32), st.floats(width=32))
        return st.one_of(st.floats(-0.5, 1.5), st.floats())
    if t == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        values = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(values), st.integers(-(2**31), I32))
    if t == FieldDescriptor.TYPE_MESSAGE and _is_struct(field):
        return structs(struct_fields)
    nested = field.message_type
    if t == FieldDescriptor.TYPE_MESSAGE and nested is not None and nested.file is pb.DESCRIPTOR:
        # A message of our own (GalleryImage): its fields are fuzzed by the same rules.
        return messages(nested, getattr(pb, nested.name), struct_fields)
    raise NotImplementedError(f"no strategy for field {field.full_name} of type {t}")


@st.composite
def messages(
    draw: st.DrawFn,
    descriptor: Descriptor,
    cls: Callable[[], Message],
    struct_fields: Mapping[str, Any] | None = None,
) -> Message:
    """A ``cls`` message with each field set or left unset at random (a oneof: at most one member).

    Half the messages are *plausible* (images that decode, known names, small numbers), so the fuzzing
    reaches the work behind the parsing; the other half are wild.
    """
    msg = cls()
    plausible = draw(st.booleans())
    chosen_oneofs = {
        o.name: draw(st.sampled_from([None, *[f.name for f in o.fields]])) for o in descriptor.oneofs
    }
    for field in descriptor.fields:
        group = field.containing_oneof
        if group is not None and not group.name.startswith("_") and chosen_oneofs[group.name] != field.name:
            continue  # a real oneof (proto3 ``optional`` makes a synthetic one named _field)
        if not plausible and not draw(st.integers(0, 4)):  # wild: unset one time in five
            continue
        strategy = _scalar(field, struct_fields or {}, plausible)
        if field.is_repeated:
            values = draw(st.lists(strategy, min_size=1 if plausible else 0, max_size=3))
            getattr(msg, field.name).extend(values)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, field.name).CopyFrom(draw(strategy))
        else:
            setattr(msg, field.name, draw(strategy))
    return msg


def request_strategy(
    method: str, struct_fields: Mapping[str, Any] | None = None
) -> st.SearchStrategy[Message]:
    """Requests for ``method`` of the Atelier service (``"Stylize"``, ``"Gatys"``, ...)."""
    desc = SERVICE.methods_by_name[method].input_type
    cls = getattr(pb, desc.name)
    return messages(desc, cls, struct_fields or {})
