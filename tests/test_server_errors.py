"""The error table: every typed error of the core has one gRPC and one HTTP status, bad input is never
UNKNOWN/INTERNAL, and the option parser turns loose JSON into typed options or a readable error."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from service.core import errors
from service.server.errors import (
    ERROR_TABLE,
    INTERNAL,
    INTERNAL_MESSAGE,
    public_message,
    reason_of,
    status_for,
)
from service.server.plane.options import build_options

# What each error means for the caller; the table must agree.
CLIENT_ERRORS = (
    errors.InvalidImage,
    errors.ImageTooLarge,
    errors.InvalidArgument,
    errors.NotFound,
    errors.UnknownModel,
    errors.UnknownJob,
)


def _instance(cls: type[errors.AtelierError]) -> errors.AtelierError:
    if cls is errors.UnknownModel:
        return errors.UnknownModel("style", "nope", ["a", "b"])
    return cls("something went wrong")


def test_every_core_error_has_an_entry() -> None:
    assert set(ERROR_TABLE) == set(errors.ALL_ERRORS)


@pytest.mark.parametrize("cls", errors.ALL_ERRORS, ids=lambda c: c.__name__)
def test_each_entry(cls: type[errors.AtelierError]) -> None:
    exc = _instance(cls)
    status = status_for(exc)
    assert status == ERROR_TABLE[cls]
    assert isinstance(status.grpc, grpc.StatusCode)
    assert 400 <= status.http <= 599
    assert public_message(exc).startswith(exc.message)  # the caller sees the typed error's own message
    assert reason_of(exc) == exc.reason
    if cls in CLIENT_ERRORS:
        assert status.grpc not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
        assert 400 <= status.http < 500


def test_specific_codes() -> None:
    assert status_for(errors.InvalidImage("x")).grpc == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(errors.UnknownModel("style", "x", [])).grpc == grpc.StatusCode.NOT_FOUND
    assert status_for(errors.ResourceExhausted("x")).http == 429
    assert status_for(errors.NotReady("x")).grpc == grpc.StatusCode.UNAVAILABLE
    assert status_for(errors.DeadlineExceeded("x")).grpc == grpc.StatusCode.DEADLINE_EXCEEDED


def test_subclass_without_entry_uses_nearest_base() -> None:
    class BadCrop(errors.InvalidArgument):
        pass

    assert status_for(BadCrop("x")) == ERROR_TABLE[errors.InvalidArgument]


def test_unexpected_exception_is_internal_with_generic_message() -> None:
    exc = KeyError("secret internal detail")
    assert status_for(exc) == INTERNAL
    assert public_message(exc) == INTERNAL_MESSAGE and "secret" not in public_message(exc)
    assert reason_of(exc) == "internal"


def test_retry_hint_in_message() -> None:
    assert "Retry after 3 s" in public_message(errors.ResourceExhausted("Queue full.", retry_after_s=3))


@dataclass
class _Opts:
    size: int = 512
    scale: float = 1.0
    name: str = "lbfgs"
    flag: bool = False
    sides: tuple[int, ...] | None = None
    weight: float | None = None


def test_build_options_coerces_json_numbers() -> None:
    o = build_options(_Opts, {"size": 384.0, "scale": 2, "sides": [128.0, 256], "weight": None, "flag": True})
    assert o == _Opts(size=384, scale=2.0, sides=(128, 256), weight=None, flag=True)
    assert isinstance(o.size, int) and isinstance(o.scale, float)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"colour": 1}, "Unknown option 'colour'"),
        ({"size": 2.5}, "integer"),
        ({"size": "big"}, "integer"),
        ({"flag": 1}, "true or false"),
        ({"scale": float("nan")}, "finite"),
        ({"sides": 5}, "list"),
        ({"name": 3}, "string"),
        ({"size": True}, "integer"),
    ],
)
def test_build_options_rejects_bad_values(options: dict[str, object], match: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=match):
        build_options(_Opts, options)


def test_build_options_blocks_server_controlled_fields() -> None:
    with pytest.raises(errors.InvalidArgument, match="Unknown option 'size'"):
        build_options(_Opts, {"size": 10}, blocked=("size",))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"size": "16"}, r"must be an integer, got the string '16'"),
        ({"scale": "1.5"}, r"must be a number, got the string '1.5'"),
        ({"flag": "true"}, r"true or false, got '"),
        ({"size": float("nan")}, r"finite number, got NaN"),
        ({"scale": float("inf")}, r"finite number, got Infinity"),
        ({"sides": [128, float("-inf")]}, r"finite number, got -Infinity"),
        ({"weight": float("nan")}, r"finite number, got NaN"),
    ],
)
def test_build_options_respects_json_types_and_refuses_nan(options: dict[str, object], match: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=match):
        build_options(_Opts, options)


def test_build_options_lists_the_known_names_with_the_algorithm() -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        build_options(_Opts, {"colour": 1}, blocked=("weight",), what="saliency method 'x'")
    assert info.value.message == (
        "Unknown option 'colour' for saliency method 'x'. Known options: flag, name, scale, sides, size."
    )


def _algorithm_options() -> list[tuple[str, type, tuple[str, ...]]]:
    from service.core.render.deepdream import DreamOptions
    from service.core.render.gatys import GatysOptions
    from service.core.saliency import METHODS
    from service.core.saliency.registry import get_method
    from service.core.stylize.engine import StylizeOptions
    from service.server.plane.slow_jobs import DREAM_BLOCKED, GATYS_BLOCKED

    cases = [
        ("gatys", GatysOptions, GATYS_BLOCKED),
        ("deepdream", DreamOptions, DREAM_BLOCKED),
        ("stylize", StylizeOptions, ()),
    ]
    return cases + [(m, get_method(m).options, ()) for m in METHODS]


@pytest.mark.parametrize(
    ("name", "cls", "blocked"), _algorithm_options(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_option_of_every_algorithm_can_be_sent(name: str, cls: type, blocked: tuple[str, ...]) -> None:
    """Each settable field takes its own default as JSON would carry it (numbers as floats, tuples as
    lists): no field is of a type the transports cannot set."""
    import dataclasses
    import json

    defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls) if f.name not in blocked}
    as_json = json.loads(json.dumps(defaults, default=list))
    as_struct = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in as_json.items()
    }
    for sent in (as_json, as_struct):
        assert build_options(cls, sent, blocked) == cls(), name
