"""scripts/pareto.py's table survives the machine: the rows it wrote are read back for runs no longer under
runs/, a run scored again replaces its row, and the front is the same as from the scores themselves."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    return load_script("pareto", "pareto_script")


pareto = _load()


def score(folder: Path, style: float, structure: float, cpu: float) -> None:
    folder.mkdir(parents=True)
    median = {"structure": structure, "grid_over_photo": -0.5, "droplets": 0.0}
    body = {"photos": [{"photo": "a.jpg", "style": style}], "median": median, "cpu_seconds": cpu}
    (folder / "score.json").write_text(json.dumps(body))


def test_an_earlier_table_keeps_runs_gone_from_runs(tmp_path: Path) -> None:
    gatys = tmp_path / "gatys.json"
    gatys.write_text(json.dumps({"van_gogh_starry_night": {"photos": {"a.jpg": 0.02}, "median": 0.02}}))
    runs = tmp_path / "runs" / "long_anneal"
    score(runs / "starry_night" / "stage_1260", 0.08, 0.85, 1260.0)
    score(runs / "starry_night" / "stage_2400", 0.05, 0.80, 2400.0)
    first = tmp_path / "first.md"
    assert pareto.main(["--runs", str(runs), "--gatys-ref", str(gatys), "--table", str(first)]) == 0
    rows = {p.run: p for p in pareto.earlier_points(first)}
    assert rows["starry_night.ann2400"].ratio == pytest.approx(2.5)
    assert rows["starry_night.ann1260"].cpu_s == 1260.0

    # a new machine: stage 1260 is gone, 2400 was scored again, 3600 is new
    (runs / "starry_night" / "stage_1260" / "score.json").unlink()
    (runs / "starry_night" / "stage_2400" / "score.json").unlink()
    (runs / "starry_night" / "stage_2400").rmdir()
    score(runs / "starry_night" / "stage_2400", 0.046, 0.81, 2400.0)
    score(runs / "starry_night" / "stage_3600", 0.04, 0.82, 3600.0)
    second = tmp_path / "second.md"
    args = ["--runs", str(runs), "--gatys-ref", str(gatys), "--table", str(second), "--earlier", str(first)]
    assert pareto.main(args) == 0
    rows = {p.run: p for p in pareto.earlier_points(second)}
    assert set(rows) == {"starry_night.ann1260", "starry_night.ann2400", "starry_night.ann3600"}
    assert rows["starry_night.ann2400"].ratio == pytest.approx(2.3)  # the new score, not the old row
    on_front = [line.split("|")[1].strip() for line in second.read_text().splitlines() if "| yes |" in line]
    assert sorted(on_front) == ["starry_night.ann1260", "starry_night.ann3600"]


def test_a_row_keeps_its_cpu_seconds(tmp_path: Path) -> None:
    table = tmp_path / "t.md"
    table.write_text(
        "| run | set | style ratio to Gatys | structure | grid over photo | droplets ‰ | on the front | CPU s |\n"
        "|---|---|---:|---:|---:|---:|:---:|---:|\n"
        "| starry_night.anneal24 | probe | 2.21x | 0.80 | -0.62 | 0.0 | yes | 7200 |\n"
        "| shipped.udnie | shipped | 1.94x | 0.66 | +2.49 | 31.1 | yes | - |\n"
    )
    rows = {p.run: p for p in pareto.earlier_points(table)}
    assert rows["starry_night.anneal24"].cpu_s == 7200.0 and rows["starry_night.anneal24"].family == "probe"
    assert rows["shipped.udnie"].cpu_s == 0.0 and rows["shipped.udnie"].grid == pytest.approx(2.49)


def test_every_staged_tag_reads_back_its_seconds() -> None:
    for tag in pareto.STAGED.values():
        assert pareto.stage_seconds(f"starry_night.{tag}2400") == 2400.0


def test_every_set_is_drawn_with_a_marker_of_its_own() -> None:
    # The plot once drew only the sets it had a marker for, so the johnson2 and scale runs were in the
    # table but missing from the picture.
    families = [*pareto.STAGED, "shipped", "ablation", "recipe", "probe", "some_new_set"]
    marks = pareto.markers(families)
    assert set(families) <= set(marks)
    assert len({marks[f] for f in families}) == len(families)


def test_the_plot_draws_every_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    real = pareto.plt.Axes.scatter

    def counting(self: object, x: list[float], *args: object, **kwargs: object) -> object:
        drawn.append(len(x))
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(pareto.plt.Axes, "scatter", counting)
    pts = [
        pareto.Point(f"{style}.{tag}1260", family, style, 3.0 + i, 0.8, -0.5, 0.0, 1260.0)
        for i, (family, tag) in enumerate(pareto.STAGED.items())
        for style in ("starry_night", "udnie")
    ]
    pareto.plot(pts, tmp_path / "p.png", labelled=set())
    assert sum(drawn) == len(pts) and (tmp_path / "p.png").stat().st_size > 0
