"""scripts/recipe_long.py's shared warm start: a finished one is reused, a stopped one is resumed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.scripts_loader import load_script

recipe_long = load_script("recipe_long")


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    made: list[list[str]] = []
    monkeypatch.setattr(recipe_long, "ABLATION", tmp_path)
    monkeypatch.setattr(recipe_long, "WARM", tmp_path / "identity-x" / "identity-x.ckpt")
    monkeypatch.setattr(recipe_long, "IDENTITY_BUDGET_S", 300.0)
    monkeypatch.setattr(recipe_long.subprocess, "call", lambda cmd, **_: made.append(cmd) or 0)
    return made


def _warm(cpu_seconds: float) -> None:
    recipe_long.WARM.parent.mkdir(parents=True)
    torch.save({"cpu_seconds": cpu_seconds}, recipe_long.WARM)


def test_a_missing_warm_start_is_trained_from_scratch(calls: list[list[str]]) -> None:
    assert recipe_long.ensure_warm_start({}, dry_run=False) == 0
    assert len(calls) == 1 and "--identity" in calls[0] and "--resume" not in calls[0]


def test_a_stopped_warm_start_is_resumed_to_its_budget(calls: list[list[str]]) -> None:
    _warm(120.0)
    assert recipe_long.ensure_warm_start({}, dry_run=False) == 0
    assert len(calls) == 1 and "--resume" in calls[0]
    assert calls[0][calls[0].index("--cpu-budget") + 1] == "300.0"


def test_a_finished_warm_start_is_reused(calls: list[list[str]]) -> None:
    _warm(300.4)
    assert recipe_long.ensure_warm_start({}, dry_run=False) == 0
    assert calls == []
