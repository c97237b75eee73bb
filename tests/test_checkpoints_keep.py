"""scripts/checkpoints.py carries training runs from runs/ (lost with the machine) to checkpoints/ and
back: a run's checkpoint is kept whole so ``--resume`` continues it, a stage keeps its score and slim
weights, and a restore never overwrites a newer run."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    return load_script("checkpoints", "checkpoints_keep")


keeper = _load()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(keeper, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(keeper, "KEPT", tmp_path / "checkpoints")
    monkeypatch.setattr(keeper, "ROOT", tmp_path)
    run = tmp_path / "runs" / "long_anneal" / "moss"
    (run / "stage_1260").mkdir(parents=True)
    weights = {"w": torch.arange(6.0)}
    full = {"model": weights, "optimizer": {"state": {0: torch.ones(6)}}, "history": [1.0], "rng": 3}
    torch.save({**full, "cpu_seconds": 2000.0, "step": 40}, run / "moss.ckpt")
    torch.save({**full, "cpu_seconds": 1260.0, "step": 25}, run / "stage_1260" / "moss.ckpt")
    (run / "stage_1260" / "score.json").write_text(json.dumps({"structure": 0.9}))
    (run / "stage_1260" / "render.png").write_bytes(b"not kept")
    return run


def test_keep_then_restore_on_a_new_machine(tree: Path) -> None:
    assert keeper.main(["keep", str(tree)]) == 0
    kept = keeper.KEPT / "long_anneal" / "moss"
    whole = torch.load(kept / "moss.ckpt", weights_only=False)
    assert whole["cpu_seconds"] == 2000.0 and "optimizer" in whole  # resumable as it was
    slim = torch.load(kept / "stage_1260" / "moss.ckpt", weights_only=False)
    assert "optimizer" not in slim and torch.equal(slim["model"]["w"], torch.arange(6.0))
    assert not (kept / "stage_1260" / "render.png").exists()

    for path in sorted(keeper.RUNS.rglob("*"), reverse=True):  # the machine goes away
        path.unlink() if path.is_file() else path.rmdir()
    restored = keeper.restore()
    assert tree / "moss.ckpt" in restored
    assert json.loads((tree / "stage_1260" / "score.json").read_text()) == {"structure": 0.9}
    assert torch.load(tree / "moss.ckpt", weights_only=False)["step"] == 40


def test_restore_never_overwrites_a_newer_run(tree: Path) -> None:
    keeper.main(["keep", str(tree)])
    torch.save({"model": {}, "cpu_seconds": 3000.0, "step": 60}, tree / "moss.ckpt")  # trained on since
    assert tree / "moss.ckpt" not in keeper.restore()
    assert torch.load(tree / "moss.ckpt", weights_only=False)["step"] == 60


def test_keep_refuses_a_folder_outside_runs(tree: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert keeper.main(["keep", str(elsewhere)]) == 2
    assert not keeper.KEPT.exists()
