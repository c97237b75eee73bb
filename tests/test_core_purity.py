"""The core library is a plain library: importing every core module loads no server framework."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import importlib, pkgutil, sys
import service.core
for info in pkgutil.walk_packages(service.core.__path__, "service.core."):
    importlib.import_module(info.name)
banned = ["grpc", "fastapi", "starlette", "uvicorn", "prometheus_client", "pydantic_settings"]
loaded = [m for m in banned if m in sys.modules]
print(",".join(loaded))
"""


def test_core_imports_no_server_frameworks() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=240, check=True
    )
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"


def test_importing_service_reads_no_settings() -> None:
    """Nothing happens at import time: a broken ATELIER_* variable only fails when Settings() is built."""
    code = "import service.cli, service.settings; print('ok')"
    env = {"PATH": "/usr/bin:/bin", "ATELIER_GRPC_PORT": "not-a-number"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "ok", out.stderr
