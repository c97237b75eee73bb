"""Fuzz targets: the server's image decoding and its option parsing, as plain functions.

A target returns normally or raises a typed ``AtelierError`` (the caller's fault, mapped to a 4xx by
``service.server.errors``); any other exception is a crash, because the transports would turn it into
INTERNAL / 500. The limits and the checks are the server's own: ``Settings`` defaults for the image
limits, the data plane's ``prepare_*`` functions (which parse options and plan the work before a job is
accepted) for the slow paths, and the REST helpers that turn query/form text into options.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from fuzz.jsonish import Reader
from service.core.errors import AtelierError, InvalidArgument
from service.core.imageio import ImageLimits, decode_image, encode_image, load_image
from service.core.saliency import METHODS
from service.core.stylize.engine import StylizeOptions
from service.server.plane.config import PlaneConfig
from service.server.plane.options import build_options, settable
from service.server.plane.slow_jobs import (
    DREAM_BLOCKED,
    GATYS_BLOCKED,
    SlowConfig,
    prepare_deepdream,
    prepare_gatys,
    prepare_saliency,
)
from service.server.transport.rest.uploads import form_value, parse_json_object, parse_target
from service.settings import Settings


@cache
def server_config() -> PlaneConfig:
    """The configuration ``atelier serve`` builds with no environment (CPU, so it runs anywhere)."""
    return PlaneConfig.from_settings(Settings(_env_file=None, device="cpu"), warmup=False)  # type: ignore[call-arg]


def server_limits() -> ImageLimits:
    return server_config().limits


def slow_config() -> SlowConfig:
    return server_config().slow()


# --- image decoding ------------------------------------------------------------------------------------
def check_decode(data: bytes, limits: ImageLimits | None = None) -> np.ndarray | None:
    """``decode_image`` under the server's limits: an RGB uint8 array within them, or a typed error."""
    lim = limits or server_limits()
    try:
        image = decode_image(data, lim)
    except AtelierError:
        return None
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, (image.dtype, image.shape)
    assert 0 < image.shape[0] * image.shape[1] <= lim.max_pixels, image.shape
    assert image.flags.c_contiguous
    return image


def check_load(data: bytes, folder: Path, limits: ImageLimits | None = None) -> None:
    """``load_image`` on the same bytes as a file: the same pixels as ``decode_image``, or the same error."""
    lim = limits or server_limits()
    path = folder / "input.img"
    path.write_bytes(data)
    try:
        loaded: np.ndarray | AtelierError = load_image(path, lim)
    except AtelierError as exc:
        loaded = exc
    try:
        decoded: np.ndarray | AtelierError = decode_image(data, lim)
    except AtelierError as exc:
        decoded = exc
    if isinstance(loaded, np.ndarray) and isinstance(decoded, np.ndarray):
        assert np.array_equal(loaded, decoded)
    else:
        assert type(loaded) is type(decoded), (loaded, decoded)


def decoder_target(data: bytes) -> None:
    """The whole decoder target: ``decode_image`` and, for one input in eight, ``load_image`` too."""
    check_decode(data)
    if data[:1] and data[0] % 8 == 0:
        with tempfile.TemporaryDirectory() as tmp:
            check_load(data, Path(tmp))


# --- options -------------------------------------------------------------------------------------------
@cache
def _tiny_png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_image(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), "png")


def _stylize(options: Mapping[str, Any]) -> None:
    # DataPlane.stylize's checks before any work (it is async and needs a loaded engine, so they are
    # repeated here; tests/test_fuzz_grpc.py covers the real call).
    opts = build_options(StylizeOptions, options, what="stylize")
    opts.check()
    cap = server_config().max_side_stylize
    if opts.max_side is not None and opts.max_side > cap:
        raise InvalidArgument(f"max_side above {cap}")


def _gatys(options: Mapping[str, Any]) -> None:
    prepare_gatys(slow_config(), _tiny_png(1), [_tiny_png(2)], options, "png", 90, None)


def _deepdream(options: Mapping[str, Any]) -> None:
    prepare_deepdream(slow_config(), _tiny_png(3), options, "png", 90, None)


def _saliency(method: str) -> Callable[[Mapping[str, Any]], None]:
    def check(options: Mapping[str, Any]) -> None:
        prepare_saliency(slow_config(), _tiny_png(4), method, None, "overlay", options, 5, None)

    return check


def _options_classes() -> dict[str, tuple[type, tuple[str, ...]]]:
    from service.core.render.deepdream import DreamOptions
    from service.core.render.gatys import GatysOptions
    from service.core.saliency.registry import get_method

    out: dict[str, tuple[type, tuple[str, ...]]] = {
        "stylize": (StylizeOptions, ()),
        "gatys": (GatysOptions, GATYS_BLOCKED),
        "deepdream": (DreamOptions, DREAM_BLOCKED),
    }
    out.update({f"saliency:{m}": (get_method(m).options, ()) for m in METHODS})
    return out


CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "stylize": _stylize,
    "gatys": _gatys,
    "deepdream": _deepdream,
    **{f"saliency:{m}": _saliency(m) for m in METHODS},
}


def option_fields(algorithm: str) -> dict[str, Any]:
    """The options a caller may set for ``algorithm``: name -> type hint."""
    cls, blocked = _options_classes()[algorithm]
    return settable(cls, blocked)


@cache
def option_names(algorithm: str) -> tuple[str, ...]:
    return tuple(option_fields(algorithm))


def check_options(algorithm: str, options: Mapping[str, Any]) -> None:
    """The server's parsing and planning of ``options`` for ``algorithm``: passes or a typed error."""
    with contextlib.suppress(AtelierError):
        CHECKS[algorithm](options)


def check_rest_text(text: str) -> None:
    """Query/form text as the REST routes read it: ``options``/``params`` JSON, form fields, targets."""
    for parse in (lambda: parse_json_object(text, "options"), lambda: form_value(text)):
        with contextlib.suppress(AtelierError):
            parse()
    with contextlib.suppress(AtelierError):
        parse_target(text)


def options_target(data: bytes) -> None:
    """One input: an algorithm, then either a structured options mapping or raw REST text."""
    r = Reader(data)
    algorithm = r.pick(sorted(CHECKS))
    if r.byte() % 4 == 0:
        text = r.take(len(data)).rstrip(b"\0").decode("utf-8", "replace")
        check_rest_text(text)
        return
    options = r.mapping(option_names(algorithm))
    check_options(algorithm, options)
    # The same options as REST delivers them: JSON text (Python's json writes NaN/Infinity) parsed back.
    check_rest_text(json.dumps(options))


# Crashes already filed as strict-xfail regressions (tests/test_fuzz_options.py, test_fuzz_rest.py). The
# atheris harness steps over them with --skip-known, so a long run finds the next bug instead of stopping
# at the first known one (libFuzzer's fork mode, which would keep going, does not work under atheris).
# Remove an entry when its fix lands.
KNOWN_CRASHES: tuple[tuple[type[BaseException], str], ...] = ()


def is_known_crash(exc: BaseException) -> bool:
    return any(isinstance(exc, kind) and text in str(exc) for kind, text in KNOWN_CRASHES)


TARGETS: dict[str, Callable[[bytes], None]] = {"decoder": decoder_target, "options": options_target}
