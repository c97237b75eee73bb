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
