"""The render commands end to end on tiny images: outputs and preview frames are written, errors are
one readable line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.cli import main


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory, chelsea: np.ndarray, coffee: np.ndarray
) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("render_cli")
    paths = {"content": d / "content.png", "style": d / "style.jpg"}
    Image.fromarray(chelsea).resize((48, 32)).save(paths["content"])
    Image.fromarray(coffee).resize((48, 32)).save(paths["style"])
    return paths


def test_gatys_writes_result_and_previews(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    argv = ["gatys", str(files["content"]), str(files["style"]), str(files["style"]), "-o", str(out)]
    argv += [
        "--size",
        "32",
        "--steps",
        "2",
        "--style-blend",
        "0.5,0.5",
        "--preview-every",
        "1",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert Image.open(out).size == (32, 21)
    assert sorted(p.name for p in tmp_path.glob("out_step*.png")) == ["out_step0001.png", "out_step0002.png"]


def test_dream_and_visualize(files: dict[str, Path], tmp_path: Path) -> None:
    dream = tmp_path / "dream.jpg"
    assert main(["dream", str(files["content"]), "-o", str(dream), "--octaves", "1", "--steps", "1"]) == 0
    assert Image.open(dream).size == (48, 32)
    grid = tmp_path / "filters.png"
    assert main(["visualize", "filters", "-o", str(grid), "--scale", "2"]) == 0
    assert Image.open(grid).size == (6 * 7 + 1, 6 * 7 + 1)
    folder = files["content"].parent
    patches = tmp_path / "patches.png"
    argv = [
        "visualize",
        "patches",
        str(folder),
        "--tap",
        "stem",
        "--channel",
        "0",
        "--top-k",
        "2",
        "-o",
        str(patches),
    ]
    assert main(argv) == 0 and patches.exists()


def test_errors_are_one_line(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.png"
    assert main(["gatys", str(files["content"]), str(files["style"]), "-o", str(out), "--size", "4096"]) == 2
    assert "longest side allowed" in capsys.readouterr().err
    assert main(["visualize", "class", "no such class", "-o", str(out), "--steps", "1"]) == 2
    assert "Unknown class" in capsys.readouterr().err
