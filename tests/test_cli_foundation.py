"""The CLI as a user runs it: a cat for chelsea, one clear line and a non-zero exit for a hostile file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=240, check=False
    )


def test_classify_chelsea(tmp_path: Path, chelsea: np.ndarray) -> None:
    path = tmp_path / "chelsea.jpg"
    Image.fromarray(chelsea).save(path, quality=95)
    result = run_cli("classify", str(path), "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    assert "cat" in lines[0] or "tabby" in lines[0]


def test_hostile_file_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "evil.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    result = run_cli("classify", str(path))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "error" in result.stderr


def test_missing_file_one_line_error(tmp_path: Path) -> None:
    result = run_cli("classify", str(tmp_path / "nope.jpg"))
    assert result.returncode != 0
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_vgg_without_weights_is_a_clear_error(tmp_path: Path, chelsea: np.ndarray) -> None:
    path = tmp_path / "c.png"
    Image.fromarray(chelsea[:64, :64]).save(path)
    result = subprocess.run(
        [sys.executable, "-m", "service", "classify", str(path), "--backbone", "vgg16"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TORCH_HOME": str(tmp_path / "torch"), "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "vgg16-397923af.pth" in result.stderr and "Traceback" not in result.stderr
