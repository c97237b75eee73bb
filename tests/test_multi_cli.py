"""``atelier styles`` and ``atelier stylize --blend ... --mask ... --background ...`` end to end on a toy
multi-style net (``tests/tinymulti.py``) beside a single-style net: a blend and a masked two-style image
from one command, the net column, and bad blends and masks as one error line."""

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
from tests.tinymulti import write_tiny_multi

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_multi(write_tiny_models(tmp_path_factory.mktemp("models"), names=("tiny_a",)))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, chelsea: np.ndarray) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    photo = chelsea[::2, ::2]
    mask = np.zeros(photo.shape, np.uint8)
    mask[:, : photo.shape[1] // 2] = 255  # the left half is the subject
    out = {"photo": folder / "cat.png", "mask": folder / "mask.png", "square": folder / "square.png"}
    save_image(photo, out["photo"])
    save_image(mask, out["mask"])
    save_image(np.zeros((40, 40, 3), np.uint8), out["square"])
    return out


def atelier(models_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ATELIER_ORT_PROVIDERS": '["CPUExecutionProvider"]', "ATELIER_MODELS_DIR": str(models_dir),
           "OMP_NUM_THREADS": "1", "ATELIER_DEVICE": "cpu"}  # fmt: skip
    env.pop("ATELIER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_styles_show_the_net(models_dir: Path) -> None:
    res = atelier(models_dir, "styles")
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()]
    assert rows[0][:6] == ["name", "arch", "version", "provider", "precision", "net"]
    assert [(r[0], r[5]) for r in rows[1:]] == [("ember", "multi"), ("moss", "multi"), ("tide", "multi"),
                                               ("tiny_a", "tiny_a")]  # fmt: skip
    listed = json.loads(atelier(models_dir, "styles", "--json").stdout)
    assert {r["name"]: r["net"] for r in listed}["tide"] == "multi"


def test_a_blend_and_a_masked_two_style_image_from_one_command(
    models_dir: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "two.png"
    res = atelier(
        models_dir, "stylize", str(files["photo"]), "--blend", "moss=0.7,tide=0.3", "--mask", str(files["mask"]),
        "--background", "ember", "-o", str(out), "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert (report["style"], report["net"], report["background"]) == ("moss:0.7,tide:0.3", "multi", "ember")
    two = load_image(out)
    plain, blended = tmp_path / "ember.png", tmp_path / "blend.png"
    assert (
        atelier(models_dir, "stylize", str(files["photo"]), "--style", "ember", "-o", str(plain)).returncode
        == 0
    )
    assert (
        atelier(
            models_dir, "stylize", str(files["photo"]), "--blend", "moss:7,tide:3", "-o", str(blended)
        ).returncode
        == 0
    )
    w = two.shape[1]
    left, right = slice(0, w // 4), slice(w - w // 4, w)
    diff = lambda a, b: float(np.abs(a.astype(float) - b).mean())  # noqa: E731
    assert diff(two[:, left], load_image(blended)[:, left]) < 1.0
    assert diff(two[:, right], load_image(plain)[:, right]) < 1.0
    salient = atelier(
        models_dir, "stylize", str(files["photo"]), "--style", "tide", "--mask", "saliency", "-o", str(tmp_path / "s.png")
    )  # fmt: skip
    assert salient.returncode == 0, salient.stderr
    assert "tide of multi, outside the mask photo" in salient.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--blend", "moss=1,nope=1"), "Known styles: ember, moss, tide"),
        (("--blend", "moss=-1"), "must not be negative"),
        (("--style", "moss", "--background", "tide"), "outside a mask"),
        (("--style", "moss", "--mask", "square"), "aspect ratio"),
        (("--style", "moss", "--mask", "missing.png"), "Mask file not found"),
    ],
)
def test_bad_blends_and_masks_are_one_error_line(
    models_dir: Path, files: dict[str, Path], tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    args = tuple(str(files["square"]) if a == "square" else a for a in args)
    res = atelier(models_dir, "stylize", str(files["photo"]), *args, "-o", str(tmp_path / "o.png"))
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("atelier: error")]
    assert len(errors) == 1 and says in errors[0], res.stderr
