"""Helpers the benchmark scripts share: input images, memory readings, load average, percentiles.

Imported by ``scripts/bench_*.py`` as ``_bench_util`` (Python puts the script's folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.core.imageio import load_image, resize_max_side  # noqa: E402

SHARED = Path("/work/shared/data")
DEFAULT_CONTENT = SHARED / "content/tubingen.jpg"
DEFAULT_STYLE = SHARED / "styles/van_gogh_starry_night.jpg"
FALLBACK_CONTENT = ROOT / "docs/samples/chelsea.jpg"  # in the repository: runs where /work/shared is absent
FALLBACK_STYLE = ROOT / "docs/samples/coffee.jpg"


def images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    content = Path(args.content or (DEFAULT_CONTENT if DEFAULT_CONTENT.exists() else FALLBACK_CONTENT))
    style = Path(args.style or (DEFAULT_STYLE if DEFAULT_STYLE.exists() else FALLBACK_STYLE))
    # Keep the inputs modest: the renders resize them anyway, and a 4000 px style costs time to resize.
    return resize_max_side(load_image(content), 1024), resize_max_side(load_image(style), 1024)


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(np.ceil(q / 100 * len(s))) - 1))]
