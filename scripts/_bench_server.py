"""``bench_serving.py``'s server harness: a real ``python -m service serve`` process and the model it serves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from _bench_util import ROOT

from service.client import AtelierClient

LISTENING = re.compile(r"listening: gRPC on [\d.]+:(\d+), HTTP on [\d.]+:(\d+)")


def pick_model(models_dir: Path, tmp: Path) -> tuple[Path, str, str]:
    """(models folder, model name, where it came from)."""
    from service.core.stylize.manifest import read_manifest

    if (models_dir / "manifest.json").exists():
        entries = [e for e in read_manifest(models_dir) if e.arch == "mobile"]
        if entries:
            where = models_dir.resolve()
            shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
            return models_dir, entries[0].name, f"shipped model `{entries[0].name}` ({shown}/)"
    from service.core.stylize.export import export_onnx
    from service.core.stylize.manifest import (
        ManifestEntry,
        ModelCard,
        add_to_manifest,
        sha256_file,
        write_card,
    )
    from service.core.stylize.nets import build_net

    path = export_onnx(build_net("mobile"), tmp / "bench.mobile.onnx")
    digest = sha256_file(path)
    write_card(
        tmp / "bench.mobile.json", ModelCard(name="bench", arch="mobile", version="0", onnx_sha256=digest)
    )
    add_to_manifest(
        tmp, ManifestEntry("bench", "bench", "mobile", "0", path.name, digest, "bench.mobile.json")
    )
    return tmp, "bench", "the `mobile` net with random weights (no shipped model found)"


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    grpc_port: int
    http_port: int

    def batch_stats(self, model: str) -> tuple[float, float]:
        """(sum, count) of the server's ``atelier_batch_size`` histogram for ``model``, from one scrape."""
        text = httpx.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=30).text
        found = {"sum": 0.0, "count": 0.0}
        for line in text.splitlines():
            for key in found:
                if line.startswith(f'atelier_batch_size_{key}{{model="{model}"}}'):
                    found[key] = float(line.rsplit(" ", 1)[1])
        return found["sum"], found["count"]


@contextmanager
def server(models: Path, **env_overrides: str) -> Iterator[ServerProcess]:
    env = {
        **os.environ,
        "ATELIER_HOST": "127.0.0.1",
        "ATELIER_ORT_PROVIDERS": '["CPUExecutionProvider"]',
        "ATELIER_DEVICE": "cpu",
        "ATELIER_LOG_LEVEL": "INFO",
        **env_overrides,
    }
    cmd = [
        sys.executable,
        "-m",
        "service",
        "serve",
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--models-dir",
        str(models),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert proc.stderr is not None
    ports = None
    for line in proc.stderr:
        m = LISTENING.search(line)
        if m:
            ports = int(m.group(1)), int(m.group(2))
            break
    if ports is None:
        raise RuntimeError("the server exited before listening")
    drain = threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True)  # type: ignore[union-attr]
    drain.start()
    try:
        with AtelierClient(f"127.0.0.1:{ports[0]}") as c:
            c.wait_ready(timeout=300)
        yield ServerProcess(proc, *ports)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
