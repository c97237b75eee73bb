"""``python -m service serve`` as a real process: it starts, serves, and on SIGTERM drains the call in
flight (which completes), then exits 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from service.client import AtelierClient
from service.core.imageio import encode_image
from tests.tinymodels import write_tiny_models

ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening: gRPC on [\d.]+:(\d+), HTTP on [\d.]+:(\d+)")


class LogReader:
    """Drains the server's stderr in a thread (so the pipe never fills) and waits for a line pattern."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append("<eof>")
            self.cond.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def match() -> bool:
            found[:] = [m for line in self.lines if (m := pattern.search(line))]
            return bool(found) or "<eof>" in self.lines

        with self.cond:
            self.cond.wait_for(match, timeout)
        assert found, "server never logged the line; its log:\n" + "".join(self.lines)
        return found[0]


def test_sigterm_drains_the_call_in_flight_and_exits_zero(tmp_path: Path) -> None:
    from skimage import data

    models = write_tiny_models(tmp_path / "models")
    env = {
        **os.environ,
        "ATELIER_HOST": "127.0.0.1",
        "ATELIER_ORT_PROVIDERS": '["CPUExecutionProvider"]',
        "ATELIER_DEVICE": "cpu",
        "ATELIER_TORCH_THREADS": "1",
        "ATELIER_GRACE_PERIOD_S": "60",
        "ATELIER_LOG_LEVEL": "INFO",
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
    log = LogReader(proc.stderr)
    try:
        grpc_port = int(log.wait_for(LISTENING, timeout=120).group(1))
        photo = encode_image(data.astronaut()[::8, ::8], "png")
        with AtelierClient(f"127.0.0.1:{grpc_port}", timeout=120) as client:
            client.wait_ready(timeout=120)
            assert [s.name for s in client.list_styles()] == ["tiny_a", "tiny_b"]
            # Long enough that it is certainly still running when the signal lands.
            stream = iter(client.gatys(photo, [photo], {"size": 32, "steps": 40, "optimizer": "adam"}))
            first = next(u for u in stream if u.step > 0)
            assert first.step < 40
            proc.send_signal(signal.SIGTERM)
            log.wait_for(re.compile("received a stop signal"), timeout=30)
            final = list(stream)[-1]  # the call in flight runs to the end
        assert final.done and final.state == "succeeded"
        assert proc.wait(timeout=90) == 0
        text = "".join(log.lines)
        assert "model tiny_a version 1" in text and "CPUExecutionProvider" in text  # one line per model
        assert text.index("received a stop signal") < text.index("stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--grpc-port" in out.stdout and "--models-dir" in out.stdout
