"""Figures of a soak run (``scripts/soak.py``): RSS slope, latency percentiles per phase, the CSV, the
plot and the Markdown page. Plain functions over plain rows, so ``tests/test_soak_report.py`` checks them
on synthetic data.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

# The bar a soak run has to clear (docs/bench/soak.md states it beside the figures).
MAX_SLOPE_MB_PER_MIN = 1.0
MAX_P99_GROWTH = 1.5  # the last phase's p99 over the first's, after warm-up


@dataclass(frozen=True)
class Sample:
    """One sampling window: the server's RSS at its end and what finished inside it."""

    t_s: float  # seconds since the traffic started, at the end of the window
    rss_mb: float
    requests: int
    p50_ms: float  # latency percentiles of the fast calls (stylize, REST and gRPC) in the window
    p99_ms: float
    client_errors: int  # 4xx / caller-caused gRPC statuses (the bad inputs are meant to get these)
    rejected: int  # 429 / RESOURCE_EXHAUSTED: a full queue, by design under 16 clients
    server_errors: int  # 5xx / INTERNAL / UNKNOWN / other unexpected failures


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0..100) by linear interpolation between order statistics; NaN if empty."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def slope_per_min(ts_s: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against time, per minute; NaN with fewer than two points."""
    n = len(ts_s)
    if n < 2:
        return math.nan
    mt, my = sum(ts_s) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts_s)
    if var == 0:
        return math.nan
    cov = sum((t - mt) * (y - my) for t, y in zip(ts_s, ys, strict=True))
    return cov / var * 60.0


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    requests: int
    p50_ms: float
    p99_ms: float


def phases(
    samples: Sequence[Sample], latencies: Sequence[tuple[float, float]], warmup_s: float
) -> list[Phase]:
    """Warm-up, then the rest in three equal phases; percentiles over every fast call of a phase
    (``latencies``: (finish time s, latency ms)), not averages of window percentiles."""
    end = samples[-1].t_s if samples else 0.0
    steady = max(end - warmup_s, 0.0)
    bounds = [("warm-up", 0.0, min(warmup_s, end))]
    bounds += [(name, warmup_s + steady * i / 3, warmup_s + steady * (i + 1) / 3)
               for i, name in enumerate(("early", "middle", "late"))]  # fmt: skip
    out = []
    for name, a, b in bounds:
        window = [ms for t, ms in latencies if a <= t < b or (b == end and t == end)]
        out.append(Phase(name, a, b, len(window), percentile(window, 50), percentile(window, 99)))
    return out


@dataclass(frozen=True)
class Verdict:
    rss_start_mb: float
    rss_end_mb: float
    slope_mb_per_min: float
    server_errors: int
    p99_growth: float
    passed: bool


def verdict(samples: Sequence[Sample], phase_list: Sequence[Phase], warmup_s: float) -> Verdict:
    steady = [s for s in samples if s.t_s > warmup_s]
    slope = slope_per_min([s.t_s for s in steady], [s.rss_mb for s in steady])
    by_name = {p.name: p for p in phase_list}
    growth = by_name["late"].p99_ms / by_name["early"].p99_ms if by_name["early"].p99_ms > 0 else math.nan
    errors = sum(s.server_errors for s in samples)
    ok = errors == 0 and slope < MAX_SLOPE_MB_PER_MIN and growth <= MAX_P99_GROWTH
    return Verdict(samples[0].rss_mb, samples[-1].rss_mb, slope, errors, growth, ok)


def write_csv(path: Path, samples: Sequence[Sample]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f.name for f in fields(Sample)])
        for s in samples:
            w.writerow([round(v, 3) if isinstance(v, float) else v for v in asdict(s).values()])


def read_csv(path: Path) -> list[Sample]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    kinds = {f.name: f.type for f in fields(Sample)}
    parsed = [{k: (int(v) if kinds[k] == "int" else float(v)) for k, v in r.items()} for r in rows]
    return [Sample(**row) for row in parsed]  # type: ignore[arg-type]


def plot(path: Path, samples: Sequence[Sample], warmup_s: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s / 60 for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot(t, [s.rss_mb for s in samples], color="tab:blue")
    ax1.set_ylabel("server RSS (MB)")
    ax2.plot(t, [s.p50_ms for s in samples], label="p50", color="tab:green")
    ax2.plot(t, [s.p99_ms for s in samples], label="p99", color="tab:red")
    ax2.set_ylabel("stylize latency (ms)")
    ax2.set_xlabel("minutes")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.axvline(warmup_s / 60, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    ax1.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def markdown(
    samples: Sequence[Sample], phase_list: Sequence[Phase], v: Verdict, warmup_s: float, context: str,
    counts: dict[str, int], stem: str = "soak",
) -> str:  # fmt: skip
    """The page; ``stem`` names its CSV and plot beside it (``soak.csv``, ``soak.png``)."""
    total = sum(s.requests for s in samples)
    lines = [
        "# Soak test",
        "",
        context,
        "",
        f"Bar: RSS slope below {MAX_SLOPE_MB_PER_MIN:g} MB/min after warm-up, no 5xx/INTERNAL, "
        f"p99 steady (late phase at most {MAX_P99_GROWTH:g}x the early one). "
        f"**{'PASS' if v.passed else 'FAIL'}**.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| duration | {_f(samples[-1].t_s / 60)} min ({_f(warmup_s / 60)} min warm-up) |",
        f"| requests | {total} ({_f(total / max(samples[-1].t_s, 1e-9))} /s) |",
        f"| RSS start / end | {_f(v.rss_start_mb)} MB / {_f(v.rss_end_mb)} MB |",
        f"| RSS slope after warm-up | {_f(v.slope_mb_per_min, 2)} MB/min |",
        f"| 5xx / INTERNAL | {v.server_errors} |",
        f"| 4xx (bad inputs on purpose) | {sum(s.client_errors for s in samples)} |",
        f"| rejected (429 / RESOURCE_EXHAUSTED) | {sum(s.rejected for s in samples)} |",
        f"| p99 late / early | {_f(v.p99_growth, 2)} |",
        "",
        "Stylize latency (REST and gRPC, 256x256 JPEG) per phase:",
        "",
        "| phase | minutes | calls | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for p in phase_list:
        lines.append(
            f"| {p.name} | {_f(p.start_s / 60)}-{_f(p.end_s / 60)} | {p.requests} | {_f(p.p50_ms)} | {_f(p.p99_ms)} |"
        )
    lines += ["", "Calls by kind and outcome:", "", "| kind | count |", "|---|---|"]
    lines += [f"| {k} | {n} |" for k, n in sorted(counts.items())]
    lines += [
        "",
        "![RSS and latency over time](soak.png)",
        "",
        "Per-window figures: [soak.csv](soak.csv).",
        "",
    ]
    return "\n".join(lines)
