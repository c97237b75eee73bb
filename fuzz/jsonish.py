"""Turn arbitrary bytes into a JSON-ish options mapping, deterministically.

Both atheris (coverage-guided bytes) and Hypothesis (``st.binary()``) feed the same decoder, so a crash
found by one replays in the other and in the checked-in corpus. The values are what a transport can
deliver: JSON from REST (ints of any size, floats incl. NaN/Infinity via Python's ``json``, strings,
booleans, null, lists, objects) and protobuf ``Struct`` values from gRPC (doubles only).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

# Floats a fuzzer rarely stumbles on by itself but that break numeric code.
SPECIAL_FLOATS: tuple[float, ...] = (
    0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, -1e308,
    math.inf, -math.inf, math.nan, 2.0**53, 2.0**63, 255.0, 1e6,
)  # fmt: skip
SPECIAL_INTS: tuple[int, ...] = (
    0,
    1,
    -1,
    2,
    3,
    16,
    64,
    255,
    256,
    1000,
    2**31,
    2**63,
    10**30,
    -(2**63),
    10**400,
)
SPECIAL_STRINGS: tuple[str, ...] = (
    "",
    "0",
    "1",
    "true",
    "nan",
    "lbfgs",
    "adam",
    "noise",
    "content",
    "x" * 300,
)


class Reader:
    """Consumes bytes from the front; returns zeros once they run out (so every input is valid)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk.ljust(n, b"\0")

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.byte() % len(items)]

    def text(self, limit: int = 24) -> str:
        n = self.byte() % (limit + 1)
        return self.take(n).decode("utf-8", "replace")

    def value(self, names: Sequence[str], depth: int = 0) -> Any:
        kind = self.byte() % (10 if depth < 3 else 7)
        if kind == 0:
            return None
        if kind == 1:
            return bool(self.byte() & 1)
        if kind == 2:
            return self.pick(SPECIAL_INTS)
        if kind == 3:
            return int.from_bytes(self.take(1 + self.byte() % 8), "little", signed=True)
        if kind == 4:
            return self.pick(SPECIAL_FLOATS)
        if kind == 5:
            return struct.unpack("<d", self.take(8))[0]
        if kind == 6:
            return self.pick(SPECIAL_STRINGS) if self.byte() & 1 else self.text()
        if kind in (7, 8):
            return [self.value(names, depth + 1) for _ in range(self.byte() % 5)]
        return self.mapping(names, depth + 1)

    def mapping(self, names: Sequence[str], depth: int = 0) -> dict[str, Any]:
        """Mostly real option names (so the parser's deeper checks are reached), sometimes unknown ones."""
        out: dict[str, Any] = {}
        for _ in range(self.byte() % 6):
            key = self.pick(names) if names and self.byte() % 8 else self.text(12)
            out[key] = self.value(names, depth)
        return out
