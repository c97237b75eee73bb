"""The CLI's finish: one ONNX Runtime provider line, shell completion, ``--json`` documents, ``doctor``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.cli import main
from service.core.imageio import save_image
from tests.tinymodels import write_tiny_models

PROVIDER_LINE = "atelier: ONNX Runtime provider: "
ORT_NOISE = ("not usable", "EP Error", "Falling back", "not on the preferred", "[W:onnxruntime")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def broken_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("models_broken"), corrupt=("broken",))


def atelier(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The real provider preference (CUDA first): the point is what a CPU-only machine prints for it.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=cwd or Path(__file__).resolve().parents[1],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stylize_says_the_provider_once(models_dir: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    save_image(np.full((40, 48, 3), 90, np.uint8), src)
    res = atelier("stylize", str(src), "--style", "tiny_a", "-o", str(out), "--models-dir", str(models_dir))
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PROVIDER_LINE), res.stderr
    assert not any(noise in res.stderr for noise in ORT_NOISE), res.stderr
    used = lines[0].removeprefix(PROVIDER_LINE).split()[0]
    assert f"tiny_a on {used}" in res.stdout  # the line names the provider that really ran
    if used == "CPUExecutionProvider":
        assert "CUDA" in lines[0]  # and says why the GPU was not used
        # -v brings the engine's own notes back (why CUDA was dropped) next to the summary line.
        loud = atelier("-v", "styles", "--models-dir", str(models_dir))
        assert loud.returncode == 0 and "not usable" in loud.stderr and PROVIDER_LINE in loud.stderr


def test_styles_json_is_one_document_and_stderr_one_line(models_dir: Path) -> None:
    res = atelier("styles", "--json", "--models-dir", str(models_dir))
    assert res.returncode == 0, res.stderr
    assert [r["name"] for r in json.loads(res.stdout)] == ["tiny_a", "tiny_b"]
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(PROVIDER_LINE)


def test_completion_scripts_name_the_commands() -> None:
    bash = atelier("completion", "bash")
    assert bash.returncode == 0, bash.stderr
    for command in ("styles", "stylize", "classify", "saliency", "doctor", "completion", "visualize"):
        assert command in bash.stdout
    assert "complete " in bash.stdout and "--models-dir" in bash.stdout  # flags complete too
    # The script works in a real bash: what it offers after `atelier sty` and `atelier doctor --`.
    probe = (
        'source /dev/stdin; COMP_WORDS=(atelier sty); COMP_CWORD=1; _shtab_atelier; echo "${COMPREPLY[@]}"; '
        'COMP_WORDS=(atelier doctor --); COMP_CWORD=2; _shtab_atelier; echo "${COMPREPLY[@]}"'
    )
    offered = subprocess.run(
        ["bash", "-c", probe], input=bash.stdout, capture_output=True, text=True, timeout=30
    )
    commands, flags = offered.stdout.splitlines()
    assert commands.split() == ["styles", "stylize"] and {"--json", "--models-dir"} <= set(flags.split())
    zsh = atelier("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef atelier")
    assert atelier("completion", "fish").returncode == 2  # not a supported shell: argparse's usage error


def _json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)  # the whole of stdout is one document


def test_classify_and_saliency_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], coffee: np.ndarray
) -> None:
    photo = tmp_path / "coffee.png"
    save_image(coffee[100:220, 150:330], photo)
    doc = _json_out(capsys, ["classify", str(photo), str(photo), "--top", "3", "--json"])
    assert [d["image"] for d in doc] == [str(photo)] * 2
    preds = doc[0]["predictions"]
    assert len(preds) == 3 and {"index", "label", "probability"} <= set(preds[0])
    assert preds[0]["probability"] >= preds[1]["probability"] >= preds[2]["probability"]

    out = tmp_path / "maps"
    argv = ["saliency", str(photo), "--method", "gradient,gradcam", "-o", str(out), "--size", "48", "--json"]
    doc = _json_out(capsys, [*argv, "--top", "2"])
    assert [m["method"] for m in doc["maps"]] == ["gradient", "gradcam"]
    for m in doc["maps"]:
        assert Path(m["file"]).is_file() and len(m["predictions"]) == 2
        assert m["target"]["index"] == m["predictions"][0]["index"]  # default target: the top-1 class

    doc = _json_out(
        capsys,
        ["saliency-report", str(photo), "--methods", "gradient", "--sanity-methods", "gradient",
         "--size", "48", "--steps", "3", "--stages", "1", "--json"],
    )  # fmt: skip
    rows = {r["method"]: r for r in doc["faithfulness"]["rows"]}
    assert "gradient" in rows and 0.0 <= rows["gradient"]["morf"] <= 1.0
    assert len(doc["sanity"]["rows"][0]["correlations"]) == len(doc["sanity"]["stages"]) == 1


def test_patches_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], chelsea: np.ndarray) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        save_image(chelsea[i * 40 : i * 40 + 96, :128], folder / f"p{i}.png")
    out = tmp_path / "grid.png"
    argv = ["visualize", "patches", str(folder), "--tap", "stem", "--channel", "0", "--top-k", "2"]
    doc = _json_out(capsys, [*argv, "--size", "64", "-o", str(out), "--json"])
    assert out.is_file() and len(doc["patches"]) == 2
    acts = [p["activation"] for p in doc["patches"]]
    assert acts == sorted(acts, reverse=True) and all(len(p["box"]) == 4 for p in doc["patches"])


def test_doctor_json_reports_versions_models_and_setting_sources(
    broken_models_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("ATELIER_HTTP_PORT=9000\nATELIER_LOG_LEVEL=debug\n")
    env = {"ATELIER_GRPC_PORT": "50052", "ATELIER_LOG_LEVEL": "warning"}  # the environment beats .env
    res = atelier("doctor", "--json", "--models-dir", str(broken_models_dir), cwd=tmp_path, env=env)
    assert res.returncode == 1, res.stderr  # a model failed to load: doctor says so in its status
    doc = json.loads(res.stdout)
    for lib in (
        "atelier",
        "python",
        "torch",
        "torchvision",
        "onnxruntime",
        "grpcio",
        "protobuf",
        "numpy",
        "fastapi",
    ):
        assert doc["versions"][lib] and doc["versions"][lib] != "not installed", lib
    ort = doc["onnxruntime"]
    assert ort["used"] in ort["available"] and ort["preferred"][0] == "CUDAExecutionProvider"
    assert ort["used"] == "CUDAExecutionProvider" or "CUDA" in ort["note"]  # why not the GPU
    models = doc["models"]
    assert [(m["name"], m["arch"], m["version"], m["precision"]) for m in models["loaded"]] == [
        ("tiny_a", "tiny", "1", "fp32"),
        ("tiny_b", "tiny", "1", "fp32"),
    ]
    assert list(models["errors"]) == ["broken"] and "broken.tiny.onnx" in models["errors"]["broken"]
    settings = {s["name"]: s for s in doc["settings"]}
    assert settings["grpc_port"] == {
        "name": "grpc_port",
        "value": 50052,
        "source": "environment ATELIER_GRPC_PORT",
    }
    assert settings["http_port"]["value"] == 9000 and settings["http_port"]["source"].endswith(
        ".env ATELIER_HTTP_PORT"
    )
    assert settings["log_level"]["value"] == "warning" and settings["log_level"]["source"].startswith(
        "environment"
    )
    assert settings["models_dir"]["source"] == "flag --models-dir"
    assert settings["tile_size"] == {"name": "tile_size", "value": 1024, "source": "default"}
    assert doc["env_file"] == {"path": str((tmp_path / ".env").resolve()), "exists": True}


def test_doctor_text(models_dir: Path, tmp_path: Path) -> None:
    res = atelier("doctor", "--models-dir", str(models_dir), cwd=tmp_path, env={"ATELIER_JOB_WORKERS": "2"})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "models in" in out and "2 loaded, 0 failed" in out and "tiny_b" in out
    assert "not present" in out  # no .env in that folder
    job = next(line.split() for line in out.splitlines() if line.split()[:1] == ["job_workers"])
    assert job == ["job_workers", "2", "environment", "ATELIER_JOB_WORKERS"]
    assert not any(noise in res.stderr for noise in ORT_NOISE), res.stderr


def test_stylize_json(models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "in.png", tmp_path / "out.webp"
    save_image(np.full((50, 80, 3), 120, np.uint8), src)
    argv = ["stylize", str(src), "--style", "tiny_b", "-o", str(out), "--max-side", "40"]
    doc = _json_out(capsys, [*argv, "--models-dir", str(models_dir), "--json"])
    assert (doc["width"], doc["height"], doc["style"], doc["precision"]) == (40, 25, "tiny_b", "fp32")
    assert doc["output"] == str(out) and out.is_file() and doc["ms"] >= 0
