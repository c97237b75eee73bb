"""Option parsing under hostile input: every algorithm's options (``build_options`` and the planning the
server runs before accepting work) and the REST helpers that read options, params and targets from
query/form text. Corpus replay plus Hypothesis over the targets in ``fuzz/targets.py``; the regression
cases at the bottom are what the fuzzers found.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.grpc_strategies import json_values
from fuzz.hypo import fuzz_settings
from fuzz.targets import CHECKS, check_options, check_rest_text, option_names, options_target
from service.core.errors import AtelierError, InvalidArgument
from service.core.render.gatys import GatysOptions, check_gatys

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "options"
SEEDS = sorted(CORPUS.iterdir())
ALGORITHMS = sorted(CHECKS)


@pytest.mark.parametrize("path", SEEDS, ids=[p.name for p in SEEDS])
def test_corpus_replays_without_a_crash(path: Path) -> None:
    options_target(path.read_bytes())


def test_every_algorithm_has_options_to_fuzz() -> None:
    assert {"stylize", "gatys", "deepdream", "saliency:rise"} <= set(ALGORITHMS)
    assert "max_side" not in option_names("gatys")  # server-controlled fields are not the caller's


@fuzz_settings(300)
@given(data=st.binary(max_size=96))
def test_fuzzer_bytes_give_a_typed_error_or_options(data: bytes) -> None:
    options_target(data)


@st.composite
def algorithm_options(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    algorithm = draw(st.sampled_from(ALGORITHMS))
    names = option_names(algorithm)
    keys = st.one_of(st.sampled_from(names), st.text(max_size=8)) if names else st.text(max_size=8)
    # JSON numbers from REST may be ints of any size, unlike a Struct's doubles.
    values = st.one_of(json_values(), st.integers(), st.lists(st.integers(), max_size=3))
    return algorithm, draw(st.dictionaries(keys, values, max_size=4))


@fuzz_settings(200)
@given(case=algorithm_options())
def test_random_options_give_a_typed_error_or_options(case: tuple[str, dict[str, Any]]) -> None:
    check_options(*case)


@fuzz_settings(200)
@given(text=st.text(max_size=40))
def test_random_rest_text_gives_a_typed_error_or_a_value(text: str) -> None:
    check_rest_text(text)


# --- regressions: what the fuzzers found -----------------------------------------------------------------
HUGE = 10**400  # a JSON integer (REST) above the largest double


@pytest.mark.parametrize(
    "algorithm, options",
    [
        ("stylize", {"strength": HUGE}),
        ("gatys", {"content_weight": HUGE}),
        ("gatys", {"size": HUGE}),
        ("deepdream", {"size": HUGE}),
        ("saliency:smoothgrad", {"noise": HUGE}),
    ],
    ids=["stylize-strength", "gatys-weight", "gatys-size", "dream-size", "smoothgrad-noise"],
)
def test_an_integer_beyond_a_double_is_refused(algorithm: str, options: dict[str, Any]) -> None:
    with pytest.raises(AtelierError):
        CHECKS[algorithm](options)


@pytest.mark.parametrize(
    "text", ["[" * 5000, '{"steps": ' + "9" * 5000 + "}", "²"], ids=["deep", "long-int", "superscript"]
)
def test_rest_text_that_python_cannot_parse_is_refused(text: str) -> None:
    check_rest_text(text)


def test_a_style_scale_that_overflows_the_plan_is_refused(lite0: Any) -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InvalidArgument):
        check_gatys(lite0, img, [img], GatysOptions(size=64, style_scale=1e308))
    assert math.isfinite(64 * 8.0)  # the server's bound (8) is far from it


def test_what_python_cannot_parse_gets_a_message_that_says_why() -> None:
    from service.core.labels import resolve_class
    from service.server.transport.rest.uploads import form_value, parse_json_object, parse_target

    with pytest.raises(InvalidArgument, match="an integer of 401 digits"):
        CHECKS["gatys"]({"size": HUGE})
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        parse_json_object("[" * 5000, "options")
    with pytest.raises(InvalidArgument, match=r"more than \d+ digits"):
        form_value("9" * 5000)
    assert parse_target("²") == "²" and parse_target("--5") == "--5"  # labels, not int() errors
    assert parse_target(" -7 ") == -7
    for target in ("²", "9" * 5000):
        with pytest.raises(InvalidArgument):
            resolve_class(target)
