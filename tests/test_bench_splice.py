"""scripts/bench_fast_quality.py --out rewrites only the table between its markers: the discussion written
around it by hand stays, and a page without markers gets the table alone."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tests.scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    return load_script("bench_fast_quality")


bench = _load()


def test_the_discussion_around_the_table_stays(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nbefore\n\n{bench.BEGIN}\n| old |\n{bench.END}\n\nafter, by hand\n")
    out = bench.splice(page, "| new |\n")
    assert out == f"# Title\n\nbefore\n\n{bench.BEGIN}\n| new |\n{bench.END}\n\nafter, by hand\n"
    page.write_text(out)
    assert bench.splice(page, "| new |\n") == out  # idempotent


def test_a_page_without_markers_gets_the_table_alone(tmp_path: Path) -> None:
    assert bench.splice(tmp_path / "none.md", "| t |\n") == f"{bench.BEGIN}\n| t |\n{bench.END}\n"


def test_the_shipped_page_has_its_markers() -> None:
    text = (ROOT / "docs" / "bench" / "fast_style_quality.md").read_text(encoding="utf-8")
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    assert text.index(bench.BEGIN) < text.index("| renderer |") < text.index(bench.END)
