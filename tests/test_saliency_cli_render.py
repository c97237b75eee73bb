"""Rendering (heatmap, overlay, PNG, npy) and the ``atelier saliency`` / ``saliency-report`` commands."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.cli import main
from service.core.errors import InvalidArgument
from service.core.imageio import decode_image
from service.core.saliency.render import contact_sheet, encode_saliency, heatmap, overlay


def test_heatmap_and_overlay() -> None:
    m = np.linspace(0, 1, 12 * 20, dtype=np.float32).reshape(12, 20)
    heat = heatmap(m)
    assert heat.shape == (12, 20, 3) and heat.dtype == np.uint8
    assert heat[0, 0].sum() < heat[-1, -1].sum()  # inferno: dark for 0, bright for 1
    image = np.full((12, 20, 3), 77, np.uint8)
    np.testing.assert_array_equal(overlay(image, m, alpha=0.0), image)
    np.testing.assert_array_equal(overlay(image, m, alpha=1.0), heat)
    assert overlay(np.full((24, 40, 3), 5, np.uint8), m).shape == (24, 40, 3)  # map resized to the image
    with pytest.raises(InvalidArgument, match="colour map"):
        heatmap(m, "no-such-map")
    with pytest.raises(InvalidArgument, match="opacity"):
        overlay(image, m, alpha=1.5)


def test_png_and_npy_encoding() -> None:
    m = np.random.default_rng(0).random((9, 13)).astype(np.float32)
    assert decode_image(encode_saliency(m, "png")).shape == (9, 13, 3)
    back = np.load(io.BytesIO(encode_saliency(m, "npy")))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, m)
    with pytest.raises(InvalidArgument, match="png or npy"):
        encode_saliency(m, "gif")
    sheet = contact_sheet(np.zeros((30, 40, 3), np.uint8), [("a", m), ("b", m)], columns=2, tile=32)
    assert sheet.ndim == 3 and sheet.shape[2] == 3


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "coffee.png"
    Image.fromarray(data.coffee()[100:220, 150:330]).save(path)
    return path


def test_cli_one_image_one_file(photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "map.png"
    code = main(["saliency", str(photo), "--method", "gradcam", "-o", str(out), "--overlay", "--size", "64"])
    assert code == 0
    assert Image.open(out).size == (180, 120)  # the input's resolution
    assert "gradcam for" in capsys.readouterr().out


def test_cli_several_methods_to_a_directory_as_npy(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "maps"
    args = ["saliency", str(photo), "--method", "gradient,rise[masks=8,batch_size=8]", "-o", str(out)]
    assert main([*args, "--format", "npy", "--size", "48", "--target", "espresso"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["coffee.gradient.npy", "coffee.rise_masks_8_batch_size_8.npy"]
    assert np.load(out / files[0]).shape == (120, 180)


def test_cli_errors_are_one_line(photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["saliency", str(photo), "--method", "magic", "-o", str(tmp_path / "x.png")]) == 2
    assert "Unknown saliency method" in capsys.readouterr().err
    assert (
        main(["saliency", str(photo), str(photo), "--method", "gradcam", "-o", str(tmp_path / "x.png")]) == 2
    )
    assert "directory" in capsys.readouterr().err


def test_cli_report_prints_both_tables(
    photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.md"
    args = ["saliency-report", str(photo), "--methods", "gradcam", "--sanity-methods", "gradcam"]
    assert main([*args, "--size", "48", "--steps", "3", "--stages", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "MoRF/LeRF" in text and "Spearman" in text and "random (baseline)" in text
    assert out.read_text() == text
