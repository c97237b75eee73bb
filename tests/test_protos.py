"""The checked-in gRPC stubs are exactly what scripts/gen_protos.sh generates from protos/ today."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUBS = ("atelier_pb2.py", "atelier_pb2.pyi", "atelier_pb2_grpc.py")


def test_checked_in_stubs_are_not_stale(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_protos.sh"), str(tmp_path)], check=True, env=env, cwd=ROOT
    )
    for name in STUBS:
        fresh = (tmp_path / name).read_bytes()
        current = (ROOT / "service" / "api" / "v1" / name).read_bytes()
        assert fresh == current, f"service/api/v1/{name} is stale: run scripts/gen_protos.sh and commit it"


def test_stubs_import_from_the_package_path() -> None:
    # protoc writes "from atelier.v1 import ..."; the script rewrites it to the package the stubs live in.
    from service.api.v1 import atelier_pb2, atelier_pb2_grpc

    text = (ROOT / "service" / "api" / "v1" / "atelier_pb2_grpc.py").read_text()
    assert "from service.api.v1 import atelier_pb2" in text
    assert atelier_pb2_grpc.atelier_dot_v1_dot_atelier__pb2 is atelier_pb2
    service = atelier_pb2.DESCRIPTOR.services_by_name["Atelier"]
    assert atelier_pb2.DESCRIPTOR.name == "atelier/v1/atelier.proto"  # reflection serves it under this path
    assert {m.name for m in service.methods} == {
        "Stylize",
        "ListStyles",
        "Classify",
        "Saliency",
        "Gatys",
        "DeepDream",
        "Embed",
        "ListGalleries",
        "AddToGallery",
        "SearchGallery",
        "Attack",
    }
    streaming = {m.name for m in service.methods if m.server_streaming}
    assert streaming == {"Gatys", "DeepDream", "Attack"}
