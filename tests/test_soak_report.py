"""The soak report's arithmetic (scripts/soak_report.py) on synthetic data: the slope that decides
"leak or not", the percentiles, the phases and the verdict, and that the CSV round-trips."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    return load_script("soak_report")


report = _load()


def samples(rss: list[float], p99: float = 100.0, errors: int = 0, step_s: float = 10.0) -> list[Any]:
    return [
        report.Sample((i + 1) * step_s, r, 50, 40.0, p99, 3, 1, errors if i == len(rss) - 1 else 0)
        for i, r in enumerate(rss)
    ]


def test_percentile_interpolates_between_order_statistics() -> None:
    xs = list(range(1, 101))  # 1..100
    assert report.percentile(xs, 50) == pytest.approx(50.5)
    assert report.percentile(xs, 99) == pytest.approx(99.01)
    assert report.percentile([7.0], 99) == 7.0
    assert report.percentile(list(reversed(xs)), 0) == 1
    assert math.isnan(report.percentile([], 50))


def test_slope_is_per_minute_and_ignores_noise_around_a_flat_line() -> None:
    ts = [10.0 * i for i in range(60)]  # 10 minutes
    assert report.slope_per_min(ts, [200 + 0.5 * t / 60 for t in ts]) == pytest.approx(0.5)
    noisy = [200 + (3 if i % 2 else -3) for i in range(60)]
    assert abs(report.slope_per_min(ts, noisy)) < 0.1
    assert math.isnan(report.slope_per_min([1.0], [2.0]))


def test_a_leak_after_warm_up_fails_and_a_warm_up_rise_does_not() -> None:
    warm = [100 + 20 * i for i in range(12)]  # 2 minutes of fast growth: caches, allocator arenas
    flat = samples(warm + [340.0] * 48)
    leaking = samples(warm + [340 + 0.5 * i for i in range(48)])  # 3 MB/min after warm-up
    fast = [(s.t_s, 50.0) for s in flat]
    ok = report.verdict(flat, report.phases(flat, fast, 120), 120)
    assert ok.passed and ok.slope_mb_per_min == pytest.approx(0.0, abs=1e-9)
    assert (ok.rss_start_mb, ok.rss_end_mb) == (100, 340)
    bad = report.verdict(leaking, report.phases(leaking, fast, 120), 120)
    assert not bad.passed and bad.slope_mb_per_min == pytest.approx(3.0)


def test_server_errors_and_a_growing_p99_fail_the_run() -> None:
    flat = samples([300.0] * 60, errors=1)
    fast = [(s.t_s, 50.0) for s in flat]
    v = report.verdict(flat, report.phases(flat, fast, 60), 60)
    assert v.server_errors == 1 and not v.passed
    clean = samples([300.0] * 60)
    slowing = [(t, 50.0 + t) for t, _ in ((s.t_s, 0) for s in clean)]  # latency grows with time
    v = report.verdict(clean, report.phases(clean, slowing, 60), 60)
    assert v.p99_growth > report.MAX_P99_GROWTH and not v.passed


def test_phases_split_the_run_after_warm_up_in_three() -> None:
    run = samples([300.0] * 60)  # 600 s
    lat = [(t / 10, 10.0 if t < 3000 else 30.0) for t in range(6000)]  # a call every 0.1 s
    names = [(p.name, round(p.start_s), round(p.end_s)) for p in report.phases(run, lat, 150)]
    assert names == [("warm-up", 0, 150), ("early", 150, 300), ("middle", 300, 450), ("late", 450, 600)]
    early, late = report.phases(run, lat, 150)[1], report.phases(run, lat, 150)[3]
    assert early.p99_ms == 10.0 and late.p50_ms == 30.0
    assert sum(p.requests for p in report.phases(run, lat, 150)) == len(lat)


def test_csv_round_trips_and_the_page_states_the_figures(tmp_path: Path) -> None:
    run = samples([300.0 + i for i in range(30)])
    report.write_csv(tmp_path / "soak.csv", run)
    assert report.read_csv(tmp_path / "soak.csv") == run
    phase_list = report.phases(run, [(s.t_s, 40.0) for s in run], 60)
    v = report.verdict(run, phase_list, 60)
    md = report.markdown(run, phase_list, v, 60, "context line", {"rest_stylize ok": 5})
    assert "| RSS start / end | 300.0 MB / 329.0 MB |" in md
    assert "| 5xx / INTERNAL | 0 |" in md and "**FAIL**" in md  # 6 MB/min is a leak
    report.plot(tmp_path / "soak.png", run, 60, "test")
    assert (tmp_path / "soak.png").read_bytes()[:4] == b"\x89PNG"
