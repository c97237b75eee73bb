"""Turn a transport's loose option mapping (JSON object, protobuf Struct) into an algorithm's options
dataclass, with a readable ``InvalidArgument`` for unknown names and wrong types.

JSON and protobuf ``Struct`` carry every number as a float, so integral floats are accepted for ``int``
fields (``384.0`` -> 384) and anything else is refused rather than silently truncated.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from service.core.errors import InvalidArgument

T = TypeVar("T")


def _scalar(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise InvalidArgument(f"Option {name!r} must be true or false, got {value!r}.")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"Option {name!r} must be an integer, got {value!r}.")
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise InvalidArgument(f"Option {name!r} must be an integer, got {value!r}.")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgument(f"Option {name!r} must be a finite number, got {value!r}.")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise InvalidArgument(f"Option {name!r} must be a string, got {value!r}.")
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
            raise InvalidArgument(f"Option {name!r} must be a list, got {value!r}.")
        item = typing.get_args(hint)[0]
        return tuple(_scalar(name, v, item) for v in value)
    if isinstance(hint, type):
        return _scalar(name, value, hint)
    raise InvalidArgument(f"Option {name!r} cannot be set here.")


def build_options(cls: type[T], options: Mapping[str, Any] | None, blocked: tuple[str, ...] = ()) -> T:
    """``cls(**options)`` after checking each name against the dataclass fields and coercing its type.

    ``blocked`` names are server-controlled (size limits, images passed separately) and refused.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls) if f.name not in blocked]
    values: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if name not in allowed:
            raise InvalidArgument(f"Unknown option {name!r}. Known options: {', '.join(sorted(allowed))}.")
        values[name] = _coerce(name, value, hints[name])
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"Invalid options: {exc}") from None
