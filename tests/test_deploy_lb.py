"""deploy/haproxy/haproxy.cfg run for real: Debian's haproxy (installed by .ci/run) in front of a live
server, with only the addresses changed (compose's ``api`` replicas become the test server's ports, the
published ports free loopback ones). REST, the SSE job stream and gRPC over the one HTTP port (h2c) and
over the gRPC port give what the server gives directly; the health URI follows the replicas' readiness.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from service.client import AtelierClient, AtelierClientError
from service.core.imageio import encode_image
from service.settings import Settings
from tests.liveserver import LiveServer, LogReader

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
STARTED = re.compile(r"Using \w+\(\) as the polling mechanism")


def haproxy_bin() -> str:
    path = shutil.which("haproxy")
    assert path, "haproxy is not installed: `apt-get install haproxy` (.ci/run installs it)"
    return path


def listening_socket() -> socket.socket:
    """A loopback socket already listening on a free port: HAProxy takes it over (``bind fd@N``), so
    no other process can take the port between choosing it and HAProxy binding it, and connections
    wait in its backlog until HAProxy accepts them."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class Balancer:
    """haproxy -db (foreground) on the repository's config with local addresses; ``url`` and ``grpc``."""

    def __init__(self, tmp: Path, http_target: str, grpc_target: str) -> None:
        http_sock, grpc_sock = listening_socket(), listening_socket()
        self.http_port, self.grpc_port = http_sock.getsockname()[1], grpc_sock.getsockname()[1]
        text = CONFIG.read_text()
        for old, new in (
            (f"api:{DEFAULTS.http_port}", http_target),
            (f"api:{DEFAULTS.grpc_port}", grpc_target),
            (f"bind :{DEFAULTS.http_port}", f"bind fd@{http_sock.fileno()}"),
            (f"bind :{DEFAULTS.grpc_port}", f"bind fd@{grpc_sock.fileno()}"),
        ):
            assert old in text, f"haproxy.cfg no longer has {old!r}"
            text = text.replace(old, new)
        config = tmp / "haproxy.cfg"
        config.write_text(text)
        with http_sock, grpc_sock:  # the child keeps its copies
            self.proc = subprocess.Popen(
                [haproxy_bin(), "-db", "-V", "-f", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                pass_fds=(http_sock.fileno(), grpc_sock.fileno()),
            )
        assert self.proc.stdout is not None
        self.log = LogReader(self.proc.stdout)
        self.log.wait_for(STARTED, timeout=30)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def balancer(live: LiveServer, tmp_path: Path) -> Iterator[Balancer]:
    lb = Balancer(tmp_path, live.url.removeprefix("http://"), live.grpc_target)
    try:
        yield lb
    finally:
        lb.close()


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    return encode_image(np.ascontiguousarray(chelsea[::6, ::6]), "jpeg", 90)


def test_haproxy_accepts_the_config_as_shipped() -> None:
    """`haproxy -c`: the file parses and every server line is valid (names that do not resolve outside
    compose only warn: init-addr none)."""
    check = subprocess.run(
        [haproxy_bin(), "-c", "-f", str(CONFIG)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_rest_through_the_balancer_is_the_server_itself(
    live: LiveServer, balancer: Balancer, photo: bytes
) -> None:
    with httpx.Client(base_url=balancer.url, timeout=60) as lb:
        assert lb.get("/lb/health").status_code == 200
        assert lb.get("/readyz").json() == live.http.get("/readyz").json()
        assert lb.get("/v1/styles").json() == live.http.get("/v1/styles").json()
        params = {"style": "starry_night", "format": "png"}
        headers = {"content-type": "image/jpeg"}
        via = lb.post("/v1/stylize", params=params, content=photo, headers=headers)
        direct = live.http.post("/v1/stylize", params=params, content=photo, headers=headers)
        assert via.status_code == 200 and via.content == direct.content
        # Errors keep their status and body; X-Forwarded-For is added for the server's logs.
        bad = lb.post("/v1/stylize", params={"style": "nope"}, content=photo, headers=headers)
        assert bad.status_code == 404 and bad.json()["error"]["reason"] == "unknown_model"


def test_job_events_stream_through_the_balancer(
    live: LiveServer, balancer: Balancer, chelsea: np.ndarray, coffee: np.ndarray
) -> None:
    """A Gatys job submitted and followed through the balancer: the SSE stream is passed on as it comes
    and ends with the job, and the result is the job's."""
    files = [
        ("content", ("content.jpg", encode_image(chelsea[::8, ::8], "jpeg"), "image/jpeg")),
        ("style", ("style.jpg", encode_image(coffee[::8, ::8], "jpeg"), "image/jpeg")),
    ]
    options = {"size": 48, "steps": 3}
    with httpx.Client(base_url=balancer.url, timeout=120) as lb:
        submitted = lb.post("/v1/jobs/gatys", files=files, data={"options": json.dumps(options)})
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()["id"]
        states = []
        with lb.stream("GET", f"/v1/jobs/{job}/events") as events:
            assert events.status_code == 200 and events.headers["content-type"].startswith(
                "text/event-stream"
            )
            for line in events.iter_lines():
                if line.startswith("data:"):
                    states.append(json.loads(line[5:])["state"])
        assert states[-1] == "succeeded", states
        result = lb.get(f"/v1/jobs/{job}/result")
        assert result.status_code == 200 and result.content == live.http.get(f"/v1/jobs/{job}/result").content


@pytest.mark.parametrize("port", ["http", "grpc"])
def test_grpc_through_the_balancer_on_either_port(
    live: LiveServer, balancer: Balancer, photo: bytes, port: str
) -> None:
    """gRPC over HTTP/2: on the HTTP port HAProxy tells h2c from HTTP/1.1 by the connection preface and
    routes by content-type; status codes and trailers come back as the server sent them."""
    target = f"127.0.0.1:{balancer.http_port}" if port == "http" else balancer.grpc
    with AtelierClient(target) as via, AtelierClient(live.grpc_target) as direct:
        assert [s.name for s in via.list_styles(timeout=30)] == [
            s.name for s in direct.list_styles(timeout=30)
        ]
        assert via.health(timeout=30) == "SERVING"
        assert (
            via.stylize(photo, "starry_night", timeout=60).image
            == direct.stylize(photo, "starry_night").image
        )
        with pytest.raises(AtelierClientError) as err:
            via.stylize(photo, "nope", timeout=30)
        assert err.value.code == grpc.StatusCode.NOT_FOUND


def test_health_uri_fails_when_no_replica_is_ready(tmp_path: Path) -> None:
    """No replica answers: the checks take every server out, and the balancer's own health is 503 (so
    compose marks it unhealthy) while calls get HAProxy's 503 rather than hanging."""
    with listening_socket() as sock:
        port = sock.getsockname()[1]
    closed = f"127.0.0.1:{port}"  # closed again: connections to it are refused
    lb = Balancer(tmp_path, closed, closed)
    try:
        lb.log.wait_for(re.compile(r"backend api_rest has no server available"), timeout=30)
        with httpx.Client(base_url=lb.url, timeout=30) as client:
            assert client.get("/lb/health").status_code == 503
            assert client.get("/v1/styles").status_code == 503
    finally:
        lb.close()
