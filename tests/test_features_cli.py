"""``atelier embed | neighbours | map | attack | fool`` end to end on a small folder of scikit-image photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.cli import main
from service.core.imageio import load_image


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    d = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket", "camera"):
        image = np.asarray(getattr(data, name)())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        Image.fromarray(image).resize((160, 120)).save(d / f"{name}.png")
    (d / "notes.txt").write_text("not an image")  # ignored by suffix
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")  # skipped with a message
    return d


def test_embed_writes_names_and_vectors(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "feats.npz"
    assert main(["embed", str(folder), "-o", str(out), "--normalize"]) == 0
    with np.load(out) as f:
        assert list(f["names"]) == ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.png"]
        assert f["vectors"].shape == (5, 1280) and f["vectors"].dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(f["vectors"], axis=1), 1.0, rtol=1e-5)
        assert str(f["tap"]) == "pool" and str(f["backbone"]) == "efficientnet_lite0"
    assert "skipped broken.jpg" in capsys.readouterr().err


def test_neighbours_find_the_query_first(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feats, sheet = tmp_path / "feats.npz", tmp_path / "sheet.png"
    assert main(["embed", str(folder), "-o", str(feats)]) == 0
    capsys.readouterr()
    argv = ["neighbours", str(folder / "coffee.png"), "--gallery", str(feats), "-k", "3", "-o", str(sheet)]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert Path(doc["neighbours"][0]["image"]).name == "coffee.png"
    assert doc["neighbours"][0]["distance"] < 1e-4 and len(doc["neighbours"]) == 3
    assert load_image(sheet).shape[1] >= 4 * 160  # query + 3 tiles
    # a folder as gallery (embedded on the fly) and the table output
    assert (
        main(
            ["neighbours", str(folder / "rocket.png"), "--gallery", str(folder), "-k", "2", "-o", str(sheet)]
        )
        == 0
    )
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["rank", "distance", "image"] and table[1].endswith("rocket.png")


def test_map_writes_an_image(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.png"
    assert (
        main(["map", str(folder), "--method", "pca", "-o", str(out), "--size", "400", "--thumb", "48"]) == 0
    )
    image = load_image(out)
    assert image.shape[0] == 400 and image.std() > 10


def test_attack_writes_image_perturbation_and_sheet(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, sheet = tmp_path / "adv.png", tmp_path / "sheet.png"
    argv = ["attack", str(folder / "chelsea.png"), "--method", "fgsm", "--eps", "2", "-o", str(out)]
    assert main([*argv, "--sheet", str(sheet), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["linf"] <= 2 and len(doc["before"]) == 5 and len(doc["after"]) == 5
    assert load_image(out).shape == (224, 224, 3)
    assert load_image(tmp_path / "adv_perturbation.png").shape == (224, 224, 3)
    assert load_image(sheet).shape[1] > 3 * 224


def test_cli_errors_are_one_line(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["attack", str(folder / "chelsea.png"), "--target", "no such class", "-o", str(tmp_path / "a.png")]
    assert main(argv) == 2
    assert "Unknown class" in capsys.readouterr().err
    assert main(["embed", str(tmp_path / "missing"), "-o", str(tmp_path / "f.npz")]) == 2
    assert "Not a folder" in capsys.readouterr().err
