"""The one strict parser from a transport's loose option mapping to an algorithm's options dataclass.

Every algorithm the server runs takes its options through ``build_options``: Gatys (``GatysOptions``),
DeepDream (``DreamOptions``), each saliency method (its registered options class) and the fast stylize
path (``StylizeOptions``), over REST (a JSON object, form fields) and gRPC (a protobuf ``Struct``, typed
request fields) alike, so one option gets one answer whichever way it arrives. The rules:

* Names are checked against the dataclass fields; an unknown name is refused listing the known ones.
* JSON types are respected: a string is never read as a number (``"16"`` is refused for an int field) or
  a boolean, and a boolean is never a number.
* Integral floats are accepted for ``int`` fields (``384.0`` -> 384), because a protobuf ``Struct``
  carries every number as a double; any other float is refused rather than silently truncated.
* NaN and Infinity are refused for every number, with a message that says so (Python's ``json`` and a
  protobuf float both let them through).
* Every value is within its documented bound (``plane/bounds.py``, listed in docs/limits.md): numbers in
  their range, lists no longer than their item limit, strings at most ``NAME_CHARS`` characters. So no
  option can make one request unbounded, and nothing that would only fail inside a job is accepted.
* What a caller sent is echoed cut short (``service.core.errors.quoted``).

Finer checks (one blend weight per style, increasing scales, a known tap) stay with each dataclass
(``__post_init__``) or the algorithm's own planning, which the server runs before accepting a job.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from service.core.errors import InvalidArgument, quoted
from service.server.plane.bounds import NAME_CHARS, Bound, bound_of

T = TypeVar("T")


def _describe(value: Any) -> str:
    """A value as the caller wrote it (JSON spelling), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict | list | tuple):
        return "an object" if isinstance(value, dict) else f"a list of {len(value)} items"
    if isinstance(value, int):
        return _num(value)  # repr() fails on an int of more than 4300 digits
    return quoted(value) if isinstance(value, str) else repr(value)


def _number(name: str, value: Any, integral: bool) -> int | float:
    kind = "an integer" if integral else "a number"
    if isinstance(value, str):
        raise InvalidArgument(
            f"Option {name!r} must be {kind}, got the string {quoted(value)}; send it as a JSON number."
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"Option {name!r} must be {kind}, got {_describe(value)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"Option {name!r} must be a finite number, got {_describe(value)}.")
    if not integral and isinstance(value, int) and not _fits_a_double(value):
        # A JSON integer (REST) may have hundreds of digits; float() of it raises OverflowError. An
        # integral field keeps it as an int and its bound refuses it, with a message that shows its size.
        raise InvalidArgument(f"Option {name!r} must be a finite number, got {_num(value)}.")
    if not integral:
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise InvalidArgument(f"Option {name!r} must be an integer, got {value!r}.")
    return int(value)


def _scalar(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise InvalidArgument(f"Option {name!r} must be true or false, got {_describe(value)}.")
    if kind is int or kind is float:
        return _number(name, value, integral=kind is int)
    if kind is str:
        if not isinstance(value, str):
            raise InvalidArgument(f"Option {name!r} must be a string, got {_describe(value)}.")
        if len(value) > NAME_CHARS:
            raise InvalidArgument(
                f"Option {name!r} is {len(value)} characters long; the limit is {NAME_CHARS}."
            )
        return value
    raise InvalidArgument(f"Option {name!r} cannot be set here.")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(hint)):
            return None
        if len(args) == 1:
            return _coerce(name, value, args[0])
        raise InvalidArgument(f"Option {name!r} cannot be set here.")
    if origin is tuple:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise InvalidArgument(f"Option {name!r} must be a list, got {_describe(value)}.")
        item = typing.get_args(hint)[0]
        return tuple(_scalar(name, v, item) for v in value)
    if isinstance(hint, type):
        return _scalar(name, value, hint)
    raise InvalidArgument(f"Option {name!r} cannot be set here.")


def _check_bound(name: str, value: Any, bound: Bound, where: str) -> None:
    if isinstance(value, tuple):
        if bound.items is not None and len(value) > bound.items:
            raise InvalidArgument(
                f"Option {name!r}{where} takes at most {bound.items} items, got {len(value)}."
            )
        for item in value:
            _check_bound(name, item, replace(bound, items=None), where)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # None (the default), booleans, strings (capped in _scalar)
    lo, hi = bound.lo, bound.hi
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidArgument(
            f"Option {name!r}{where} must be between {_num(lo)} and {_num(hi)}, got {_num(value)}."
        )


def _fits_a_double(value: int) -> bool:
    return abs(value) <= _DOUBLE_MAX


_DOUBLE_MAX = int(sys.float_info.max)


def _num(value: float | None) -> str:
    """A bound or value as a person writes it: 4294967295, 0.01, 1e+09 (not 4.29497e+09)."""
    if value is None:
        return "any"
    if isinstance(value, int) and not _fits_a_double(value):
        # Neither float() nor (past 4300 digits) str() works on it; its size is what matters.
        digits = int(value.bit_length() * math.log10(2))  # exact or one short
        digits += 10**digits <= abs(value)
        return f"an integer of {digits} digits"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def settable(cls: type, blocked: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``cls`` a caller may set (name -> type hint), in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in blocked}


def build_options(
    cls: type[T], options: Mapping[str, Any] | None, blocked: tuple[str, ...] = (), what: str = ""
) -> T:
    """``cls(**options)`` after checking each name against the dataclass fields and each value's type.

    ``blocked`` names are server-controlled (size limits, images passed separately) and refused as
    unknown. ``what`` names the algorithm in messages (``"saliency method 'rise'"``).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    fields = settable(cls, blocked)
    where = f" for {what}" if what else ""
    values: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise InvalidArgument(f"Unknown option {quoted(name)}{where}. Known options: {known}.")
        values[name] = _coerce(name, value, fields[name])
        bound = bound_of(cls, name)
        if bound is not None:
            _check_bound(name, values[name], bound, where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"Invalid options{where}: {exc}") from None
