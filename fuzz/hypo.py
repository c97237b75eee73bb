"""Hypothesis settings shared by the fuzz tests: small and deterministic in CI, long and random on demand.

``ATELIER_FUZZ_SCALE`` multiplies every test's example count (``scripts/fuzz.sh`` sets it); with
``ATELIER_FUZZ_RANDOM=1`` the examples are drawn at random instead of from a fixed seed, so repeated long
runs explore different inputs. CI leaves both unset: the same examples every run, so a red build is a
change in the code, not in the draw. No example database is written (nothing lands in the checkout).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def scale() -> float:
    return float(os.environ.get("ATELIER_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, round(examples * scale())),
        deadline=None,  # real servers on a shared 2-core machine: timing is not the property under test
        derandomize=os.environ.get("ATELIER_FUZZ_RANDOM", "") != "1",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=True,
    )
