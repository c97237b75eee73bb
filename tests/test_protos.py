"""The checked-in gRPC stubs are exactly what scripts/gen_protos.sh generates from protos/ today: ours
(atelier/v1) and the Open Inference Protocol's (inference/, in a descriptor pool of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUBS = ("atelier_pb2.py", "atelier_pb2.pyi", "atelier_pb2_grpc.py")
V2_STUBS = ("open_inference_grpc_pb2.py", "open_inference_grpc_pb2.pyi", "open_inference_grpc_pb2_grpc.py")


def test_checked_in_stubs_are_not_stale(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    out, out_v2 = tmp_path / "v1", tmp_path / "inference"
    script = str(ROOT / "scripts" / "gen_protos.sh")
    subprocess.run(["bash", script, str(out), str(out_v2)], check=True, env=env, cwd=ROOT)
    for folder, names, package in ((out, STUBS, "v1"), (out_v2, V2_STUBS, "inference")):
        for name in names:
            fresh = (folder / name).read_bytes()
            current = (ROOT / "service" / "api" / package / name).read_bytes()
            assert fresh == current, f"service/api/{package}/{name} is stale: run scripts/gen_protos.sh"


def test_v2_stubs_import_beside_tritonclients_own() -> None:
    # tritonclient's stubs of Triton's grpc_service.proto define the same inference.* names in the default
    # pool; ours live in a pool of their own, so one process (a test, a client app) can import both.
    import tritonclient.grpc.service_pb2 as triton_pb

    from service.api.inference import open_inference_grpc_pb2 as pb
    from service.api.inference import open_inference_grpc_pb2_grpc as pb_grpc

    assert pb.DESCRIPTOR.name == "inference/open_inference_grpc.proto" and pb.DESCRIPTOR.pool is pb.POOL
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {m.name for m in service.methods} == {
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    }
    assert pb_grpc.inference_dot_open__inference__grpc__pb2 is pb  # the import rewritten to our package
    # The same bytes on the wire: a request of ours reads as Triton's.
    ours = pb.ModelInferRequest(model_name="starry_night", raw_input_contents=[b"\x01\x02"])
    ours.inputs.add(name="IMAGE", datatype="UINT8", shape=[1, 1, 2, 1])
    theirs = triton_pb.ModelInferRequest.FromString(ours.SerializeToString())
    assert theirs.model_name == "starry_night" and list(theirs.inputs[0].shape) == [1, 1, 2, 1]
    assert list(theirs.raw_input_contents) == [b"\x01\x02"]


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
        "WatchJob",
        "CancelJob",
    }
    streaming = {m.name for m in service.methods if m.server_streaming}
    assert streaming == {"Gatys", "DeepDream", "Attack", "WatchJob"}
