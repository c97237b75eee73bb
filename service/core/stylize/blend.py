"""Style blends: per-call weights over the styles of one multi-style net, parsed, checked, normalised.

A multi-style net (arch ``mobile2_multi``) conditions its instance norms on a style vector: conditional
instance normalisation, Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for Artistic Style"
(arXiv:1610.07629), section 2.2 and figure 7: the norm parameters are ``gamma = w @ Gamma`` and
``beta = w @ Beta`` for weights ``w`` that are non-negative and sum to 1, so a one-hot ``w`` is that style
and any other ``w`` interpolates between the styles. This module turns what a caller sends into that ``w``.

Accepted spellings (every transport hands its value here unchanged):

* a string ``"starry_night:0.7,the_scream:0.3"`` or ``"starry_night=0.7,the_scream=0.3"`` (REST query and
  form fields, the CLI's ``--blend``);
* JSON, as a string or already parsed: an object ``{"starry_night": 0.7, "the_scream": 0.3}`` or a list of
  ``{"style": ..., "weight": ...}`` objects (gRPC's ``repeated StyleWeight``) or ``[name, weight]`` pairs.

Every weight must be a finite number >= 0 and not all may be zero; a style may appear once. Weights are
then divided by their sum. Whether the names exist is checked against a net's style list
(``Blend.vector``, ``check_known``): an unknown name is refused listing the known ones. Every refusal is
an ``InvalidArgument`` whose message says what to change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.core.errors import InvalidArgument, quoted

MAX_BLEND_STYLES = 64  # more entries than any net has styles: refused before any lookup
MAX_BLEND_CHARS = 8192  # the longest blend text read (64 entries of a 64-character name and a weight)
NAME_CHARS = 64  # the longest style name (as the option parser's strings)
EXAMPLE = "starry_night:0.7,the_scream:0.3"


@dataclass(frozen=True)
class Blend:
    """Style weights normalised to sum 1, in the order the caller gave them."""

    weights: tuple[tuple[str, float], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)

    @property
    def pure(self) -> str | None:
        """The one style with all the weight, if there is one (a one-hot blend), else None."""
        heavy = [name for name, w in self.weights if w > 0.0]
        return heavy[0] if len(heavy) == 1 else None

    def label(self) -> str:
        """``a:0.7,b:0.3``: the normalised weights, for headers and logs (4 significant digits)."""
        return ",".join(f"{name}:{w:.4g}" for name, w in self.weights)

    def check_known(self, known: Collection[str], what: str = "") -> None:
        """Refuse a name not in ``known`` with the list of known names (``what``: whose styles they are)."""
        unknown = [name for name in self.names if name not in known]
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            which = ", ".join(quoted(n) for n in unknown[:8])
            plural = "styles" if len(unknown) > 1 else "style"
            raise InvalidArgument(f"Unknown {plural} {which} in the blend. Known styles{what}: {listed}.")

    def vector(self, order: Sequence[str], what: str = "") -> np.ndarray:
        """The (S,) float32 weight vector in a net's style ``order`` (zero for the styles not named)."""
        self.check_known(order, what)
        index = {name: i for i, name in enumerate(order)}
        out = np.zeros(len(order), np.float32)
        for name, w in self.weights:
            out[index[name]] = w
        return out


def _weight(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = quoted(value) if isinstance(value, str) else f"{value!r:.40}"
        raise InvalidArgument(f"The blend weight of {quoted(name)} must be a number, got {shown}.")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        raise InvalidArgument(f"The blend weight of {quoted(name)} must be a finite number.") from None
    if not math.isfinite(number):
        spelled = "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
        raise InvalidArgument(f"The blend weight of {quoted(name)} must be a finite number, got {spelled}.")
    if number < 0:
        raise InvalidArgument(
            f"The blend weight of {quoted(name)} is {number:g}; weights must not be negative."
        )
    return number


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"A blend names each style by a non-empty string, got {quoted(value)}.")
    name = value.strip()
    if len(name) > NAME_CHARS:
        raise InvalidArgument(f"The style name {quoted(name)} is longer than {NAME_CHARS} characters.")
    return name


def make_blend(pairs: Iterable[tuple[Any, Any]]) -> Blend:
    """Check ``(name, weight)`` pairs and normalise the weights to sum 1 (the one place that does)."""
    items: list[tuple[str, float]] = []
    seen: set[str] = set()
    for raw_name, raw_weight in pairs:
        if len(items) >= MAX_BLEND_STYLES:
            raise InvalidArgument(f"A blend takes at most {MAX_BLEND_STYLES} styles.")
        name = _name(raw_name)
        if name in seen:
            raise InvalidArgument(f"The blend names {quoted(name)} twice; give each style once.")
        seen.add(name)
        items.append((name, _weight(name, raw_weight)))
    if not items:
        raise InvalidArgument(f"The blend is empty; give styles and weights, e.g. {EXAMPLE}.")
    top = max(w for _, w in items)
    if top <= 0.0:
        raise InvalidArgument("The blend weights are all zero; give at least one style a positive weight.")
    # Divide by the largest first: the sum of weights near the float maximum would overflow to inf.
    scaled = [(name, w / top) for name, w in items]
    total = math.fsum(w for _, w in scaled)
    return Blend(tuple((name, w / total) for name, w in scaled))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise InvalidArgument(f"The blend names {quoted(key)} twice; give each style once.")
    return dict(pairs)


def _from_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"The blend is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    except (RecursionError, ValueError):  # nesting too deep, integers above Python's digit limit
        raise InvalidArgument("The blend JSON is too deeply nested or holds too long a number.") from None


def _from_text(text: str) -> list[tuple[str, float | str]]:
    pairs: list[tuple[str, float | str]] = []
    for entry in text.split(","):
        sep = ":" if ":" in entry else "="
        name, found, weight = entry.partition(sep)
        if not found or not name.strip() or not weight.strip():
            raise InvalidArgument(
                f"Each blend entry is NAME:WEIGHT or NAME=WEIGHT, separated by commas (e.g. {EXAMPLE}); "
                f"got {quoted(entry.strip())}."
            )
        try:  # text weights are numbers written out; JSON strings stay strings (refused as such)
            number: float | str = float(weight.strip())
        except ValueError:
            number = weight.strip()
        pairs.append((name, number))
    return pairs


def _from_list(items: Sequence[Any]) -> list[tuple[Any, Any]]:
    pairs: list[tuple[Any, Any]] = []
    for item in items[: MAX_BLEND_STYLES + 1]:
        if isinstance(item, Mapping) and set(item) <= {"style", "weight"} and "style" in item:
            pairs.append((item["style"], item.get("weight", 0.0)))
        elif isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((item[0], item[1]))
        else:
            raise InvalidArgument(
                'Each item of a blend list is {"style": NAME, "weight": W} or [NAME, W], got '
                f"{quoted(json.dumps(item, default=str))}."
            )
    return pairs


def parse_blend(value: str | Mapping[str, Any] | Sequence[Any]) -> Blend:
    """A ``Blend`` from any accepted spelling (see the module docstring); ``InvalidArgument`` otherwise."""
    parsed: Any = value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_BLEND_CHARS:
            raise InvalidArgument(
                f"The blend is {len(text)} characters long; the limit is {MAX_BLEND_CHARS}."
            )
        if not text:
            raise InvalidArgument(f"The blend is empty; give styles and weights, e.g. {EXAMPLE}.")
        parsed = _from_json(text) if text[0] in "{[" else _from_text(text)
        if not isinstance(parsed, list | dict):
            raise InvalidArgument(f"The blend must be a JSON object or list, got {quoted(text)}.")
        if isinstance(parsed, list) and text[0] != "[":
            return make_blend(parsed)  # NAME:WEIGHT text: pairs already
    if isinstance(parsed, Mapping):
        if len(parsed) > MAX_BLEND_STYLES:
            raise InvalidArgument(f"A blend takes at most {MAX_BLEND_STYLES} styles.")
        return make_blend(parsed.items())
    if isinstance(parsed, list | tuple):
        return make_blend(_from_list(parsed))
    raise InvalidArgument(f"A blend is a string, an object or a list, got {type(value).__name__}.")
