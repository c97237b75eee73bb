"""``python -m service serve`` as a real process: it starts, serves, and on SIGTERM drains the call in
flight (which completes), then exits 0. The process comes from the same ``start_server`` factory as the
in-process servers (``process=True``), configured through ``ATELIER_*`` variables as when deployed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from service.client import AtelierClient
from service.core.imageio import encode_image
from tests.liveserver import STYLES, ServerProcess, StartServer

ROOT = Path(__file__).resolve().parents[1]


def test_sigterm_drains_the_call_in_flight_and_exits_zero(start_server: StartServer) -> None:
    from skimage import data

    server: ServerProcess = start_server(process=True, grace_period_s=60)
    photo = encode_image(data.astronaut()[::8, ::8], "png")
    with AtelierClient(server.grpc_target, timeout=120) as client:
        client.wait_ready(timeout=120)
        assert [s.name for s in client.list_styles()] == sorted(STYLES)
        # Long enough that it is certainly still running when the signal lands.
        stream = iter(client.gatys(photo, [photo], {"size": 32, "steps": 40, "optimizer": "adam"}))
        first = next(u for u in stream if u.step > 0)
        assert first.step < 40
        server.terminate()
        server.log.wait_for(re.compile("received a stop signal"), timeout=30)
        final = list(stream)[-1]  # the call in flight runs to the end
    assert final.done and final.state == "succeeded"
    assert server.proc.wait(timeout=90) == 0
    text = server.log.text
    assert "model tiny_a version 1" in text and "CPUExecutionProvider" in text  # one line per model
    assert text.index("received a stop signal") < text.index("stopped")


def test_serve_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--grpc-port" in out.stdout and "--models-dir" in out.stdout
