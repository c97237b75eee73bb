"""``atelier styles``, ``atelier stylize`` and ``atelier eval-style`` end to end on tiny models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.core.imageio import load_image, save_image
from tests.tinymodels import write_tiny_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"), corrupt=("broken",))


def atelier(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "ATELIER_ORT_PROVIDERS": '["CPUExecutionProvider"]', **(env or {})}
    full_env.pop("ATELIER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_styles_lists_models_and_reports_the_broken_one(models_dir: Path) -> None:
    res = atelier("styles", env={"ATELIER_MODELS_DIR": str(models_dir)})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["name", "arch", "version", "provider"]
    assert [line.split()[0] for line in lines[1:]] == ["tiny_a", "tiny_b"]
    assert all("CPU" in line and "Tiny test style" in line for line in lines[1:])
    assert "skipped broken:" in res.stderr


def test_styles_json(models_dir: Path) -> None:
    res = atelier("styles", "--json", "--models-dir", str(models_dir))
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == ["tiny_a", "tiny_b"]
    assert rows[0]["provider"] == "CPUExecutionProvider" and rows[0]["card"]["licence"] == "CC0"


def test_stylize_writes_the_image(models_dir: Path, tmp_path: Path, chelsea: np.ndarray) -> None:
    src, out = tmp_path / "cat.jpg", tmp_path / "out" / "cat.png"
    save_image(chelsea, src)
    res = atelier(
        "stylize", str(src), "--style", "tiny_b", "-o", str(out), "--max-side", "200",
        "--strength", "0.8", "--preserve-color", "--models-dir", str(models_dir),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "tiny_b on CPUExecutionProvider" in res.stdout
    img = load_image(out)
    assert max(img.shape[:2]) == 200 and img.shape[1] > img.shape[0]


def test_stylize_bad_image_is_one_error_line(models_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a JPEG")
    res = atelier(
        "stylize",
        str(bad),
        "--style",
        "tiny_a",
        "-o",
        str(tmp_path / "o.png"),
        "--models-dir",
        str(models_dir),
    )
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("atelier: error:")
    assert not (tmp_path / "o.png").exists()


def test_stylize_unknown_style_lists_the_known_ones(
    models_dir: Path, tmp_path: Path, coffee: np.ndarray
) -> None:
    src = tmp_path / "c.png"
    save_image(coffee[::8, ::8], src)
    res = atelier(
        "stylize", str(src), "--style", "nope", "-o", str(tmp_path / "o.png"), "--models-dir", str(models_dir)
    )
    assert res.returncode != 0
    assert "Unknown style 'nope'" in res.stderr and "tiny_a" in res.stderr


def test_stylize_broken_model_and_bad_strength_are_errors(models_dir: Path, tmp_path: Path) -> None:
    from service.cli import main

    src = tmp_path / "c.png"
    save_image(np.full((40, 40, 3), 120, np.uint8), src)
    assert (
        main(
            [
                "stylize",
                str(src),
                "--style",
                "broken",
                "-o",
                str(tmp_path / "o.png"),
                "--models-dir",
                str(models_dir),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "stylize",
                str(src),
                "--style",
                "tiny_a",
                "-o",
                str(tmp_path / "o.png"),
                "--strength",
                "2",
                "--models-dir",
                str(models_dir),
            ]
        )
        == 2
    )


def test_eval_style_end_to_end(
    models_dir: Path,
    tmp_path: Path,
    chelsea: np.ndarray,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from skimage import data

    from service.cli import main

    photos, styles = tmp_path / "photos", tmp_path / "styles"
    save_image(chelsea, photos / "chelsea.png")  # one photo: Gatys on a CPU is the slow part
    save_image(np.ascontiguousarray(data.astronaut()), styles / "tiny_a.png")  # tiny_a's "painting"
    out, cache = tmp_path / "table.md", tmp_path / "cache"
    argv = ["eval-style", "--models-dir", str(models_dir), "--content-dir", str(photos),
            "--styles-dir", str(styles), "--size", "48", "--gatys-steps", "1", "--device", "cpu",
            "--cache-dir", str(cache), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| `tiny_a` |")]
    assert len(rows) == 4  # the summary row, the picture measures, the style ratio by tap, one per photo
    cells = [cell.split() for cell in rows[2].split("|")[2:-1]]  # "ratio (share%)" per Lite0 style tap
    by_tap = [float(ratio) for ratio, _ in cells]
    assert len(by_tap) == 5 and all(np.isfinite(by_tap)) and min(by_tap) > 0
    assert sum(int(share.strip("(%)")) for _, share in cells) == pytest.approx(100, abs=3)
    assert len(rows[3].split("|")[-5].split(" / ")) == 5
    # structure fast / Gatys, grid fast / Gatys / photo, over photo fast / Gatys, three peaks, droplets
    picture = [cell.strip() for cell in rows[1].split("|")[2:-1]]
    assert len(picture) == 10 and len(picture[7].split(" / ")) == 3
    assert -1 <= float(picture[0]) <= 1 and float(picture[9]) >= 0
    summary = rows[0].split("|")
    assert summary[2].strip() == "1" and summary[-2].strip() in ("yes", "**no**")
    # style fast, Gatys, resampling floor, ratio; content fast, Gatys, ratio
    figures = [float(x) for x in summary[3:10]]
    assert all(np.isfinite(figures)) and min(figures) > 0
    assert figures[3] == pytest.approx(figures[0] / figures[1], rel=0.02)
    assert "`tiny_b`: no style image" in table and "`broken`" in table
    assert len(list(cache.glob("*.png"))) == 1  # the Gatys reference is cached ...
    first = table
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0  # ... and reused: the same numbers again, here as JSON too
    rerun = out.read_text()
    report = json.loads(capsys.readouterr().out)
    (pair,) = report["pairs"]
    assert pair["model"] == "tiny_a" and pair["gatys_cached"] is True
    fast = pair["fast_picture"]
    assert set(fast) >= {"structure", "grid", "photo_grid", "grid_peaks", "droplets", "grid_over_photo"}
    assert fast["grid_over_photo"] == pytest.approx(fast["grid"] - fast["photo_grid"])
    (model,) = report["models"]
    assert model["fast_picture"]["structure"] == pytest.approx(fast["structure"])  # median of one
    pick = [line.split("|")[3:5] for line in rerun.splitlines() if line.startswith("| `tiny_a` | chelsea")]
    assert pick == [
        line.split("|")[3:5] for line in first.splitlines() if line.startswith("| `tiny_a` | chelsea")
    ]
