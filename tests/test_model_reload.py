"""Hot reload of the style models (service/server/plane/model_reload.py, service/core/stylize/swap.py).

Against a real server with a models folder of its own: a new version that is corrupt leaves the old one
serving (and the reload is reported in the log and the metrics); a valid new version serves once the
reload returns; a call in flight during the reload finishes on the version it started with; SIGHUP runs
the same reload. Below the server: the sanity probe refuses a model whose output is not finite.
"""

from __future__ import annotations

import re
import shutil
import signal
import threading
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.core.imageio import decode_image, encode_image
from service.core.stylize.engine import StyleEngine
from service.core.stylize.manifest import (
    ManifestEntry,
    ModelCard,
    add_to_manifest,
    read_manifest,
    sha256_file,
    write_card,
    write_manifest,
)
from tests.liveserver import BROKEN, LiveServer, StartServer
from tests.test_rest_jobs import wait_until
from tests.tinymodels import tiny_model

PHOTO = encode_image(
    np.ascontiguousarray(np.random.default_rng(1).integers(0, 255, (40, 56, 3), np.uint8)), "png"
)


def write_version(folder: Path, name: str, version: str, data: bytes) -> None:
    """Register ``data`` as version ``version`` of ``name`` (its real sha256, so the load itself judges it)."""
    file, card_file = f"{name}.v{version}.onnx", f"{name}.v{version}.json"
    (folder / file).write_bytes(data)
    digest = sha256_file(folder / file)
    card = ModelCard(name=name, arch="tiny", version=version, title=name, onnx_sha256=digest)
    write_card(folder / card_file, card)
    entry = ManifestEntry(
        name=name, style=name, arch="tiny", version=version, file=file, sha256=digest, card=card_file
    )
    add_to_manifest(folder, entry)


def good_model(version: str) -> bytes:
    return tiny_model(zlib.crc32(f"tiny_a v{version}".encode())).SerializeToString()


def nan_model() -> bytes:
    """Obeys the I/O contract in shape, but every output value is NaN (weights that overflowed)."""
    nodes = [helper.make_node("Mul", ["input", "nan"], ["output"])]
    graph = helper.make_graph(
        nodes,
        "nan_style",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=[numpy_helper.from_array(np.array(np.nan, np.float32), "nan")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture
def folder(models_dir: Path, tmp_path: Path) -> Path:
    """A copy of the shared test models that this test may change, without the corrupt one (which would
    make every reload partial)."""
    copy = Path(shutil.copytree(models_dir, tmp_path / "models"))
    write_manifest(copy, [e for e in read_manifest(copy) if e.name != BROKEN])
    return copy


def stylize(server: LiveServer, style: str = "tiny_a") -> httpx.Response:
    r = server.http.post(
        "/v1/stylize", params={"style": style}, content=PHOTO, headers={"content-type": "image/png"}
    )
    assert r.status_code == 200, r.text
    return r


def reload(server: LiveServer) -> dict[str, Any]:
    r = server.http.post("/v1/admin/reload")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def metric(server: LiveServer, series: str) -> float:
    m = re.search(rf"^{re.escape(series)} (\S+)$", server.http.get("/metrics").text, re.M)
    return float(m.group(1)) if m else 0.0


def test_a_corrupt_new_version_leaves_the_old_one_serving(
    start_server: StartServer, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server: LiveServer = start_server(models_dir=folder, warmup=False)
    before = stylize(server).content
    failures = metric(server, 'atelier_model_load_failures_total{model="tiny_a"}')
    for data in (b"not an onnx model" * 20, nan_model()):
        write_version(folder, "tiny_a", "2", data)
        with caplog.at_level("ERROR", logger="atelier.models"):
            report = reload(server)
        assert report["result"] == "partial"  # the other models reloaded
        assert report["serving"]["tiny_a"] == "1" and "tiny_a" in report["kept"]
        assert "reload: model tiny_a refused" in caplog.text and "still serving version 1" in caplog.text
        r = stylize(server)
        assert r.headers["x-atelier-model-version"] == "1" and r.content == before
    assert "non-finite" in report["kept"]["tiny_a"]  # the second one loaded, but failed the probe
    assert metric(server, 'atelier_model_reload_total{result="partial"}') == 2
    assert metric(server, 'atelier_model_load_failures_total{model="tiny_a"}') == failures + 2


def test_a_valid_new_version_serves_after_the_reload(start_server: StartServer, folder: Path) -> None:
    server: LiveServer = start_server(models_dir=folder, warmup=False)
    before = stylize(server)
    write_version(folder, "tiny_a", "2", good_model("2"))
    report = reload(server)
    assert report["result"] == "success" and report["loaded"]["tiny_a"] == "2"
    after = stylize(server)
    assert after.headers["x-atelier-model-version"] == "2" and after.content != before.content
    styles = {s["name"]: s["version"] for s in server.http.get("/v1/styles").json()["styles"]}
    assert styles["tiny_a"] == "2" and styles["tiny_b"] == "1"
    text = server.http.get("/metrics").text
    assert (
        'atelier_model_info{arch="tiny",model="tiny_a",precision="fp32",provider="CPUExecutionProvider",version="2"} 1.0'
        in text
    )
    assert 'model="tiny_a",precision="fp32",provider="CPUExecutionProvider",version="1"' not in text


def test_a_call_in_flight_finishes_on_the_version_it_started_with(
    start_server: StartServer, folder: Path
) -> None:
    server: LiveServer = start_server(models_dir=folder, warmup=False, fast_workers=1)
    v1_output = decode_image(stylize(server).content)
    plane = server.plane
    # Hold the one fast worker, so the next call is admitted, decoded and queued for its run, then waits.
    gate = threading.Event()
    plane.fast_executor.submit(gate.wait, 60)
    answers: list[httpx.Response] = []
    call = threading.Thread(target=lambda: answers.append(stylize(server)))
    call.start()
    wait_until(
        lambda: plane._fast_pending == 1 and plane._upstream == 0, 30, "the call never reached its run"
    )

    write_version(folder, "tiny_a", "2", good_model("2"))
    assert reload(server)["loaded"]["tiny_a"] == "2"  # swapped while the call waits
    assert call.is_alive()
    gate.set()
    call.join(60)
    (answer,) = answers
    assert answer.headers["x-atelier-model-version"] == "1"
    assert np.array_equal(decode_image(answer.content), v1_output)  # ran on the old sessions, not the new
    assert stylize(server).headers["x-atelier-model-version"] == "2"


def test_sighup_reloads_the_models(start_server: StartServer, folder: Path) -> None:
    server = start_server(process=True, models_dir=folder)
    wait_until(lambda: server.http.get("/readyz").status_code == 200, 120, "the server never got ready")
    write_version(folder, "tiny_a", "2", good_model("2"))
    server.proc.send_signal(signal.SIGHUP)
    server.log.wait_for(re.compile(r"reload success"), timeout=60)
    assert stylize(server).headers["x-atelier-model-version"] == "2"


def test_the_probe_refuses_a_model_with_non_finite_output(tmp_path: Path) -> None:
    write_version(tmp_path, "nan", "1", nan_model())
    write_version(tmp_path, "tiny_a", "1", good_model("1"))
    engine = StyleEngine.load(tmp_path, providers=["CPUExecutionProvider"], warmup=False)
    assert [s.name for s in engine.styles()] == ["tiny_a"]
    assert "non-finite" in engine.load_errors["nan"]


def test_with_api_keys_the_admin_reload_needs_a_key(
    start_server: StartServer, folder: Path, tmp_path: Path
) -> None:
    from service.server.auth.keys import digest_of

    keys = tmp_path / "keys"
    keys.write_text(f"ops:{digest_of('ops-key').hex()}\n")
    server: LiveServer = start_server(models_dir=folder, warmup=False, api_keys_file=keys)
    refused = server.http.post("/v1/admin/reload")
    assert refused.status_code == 401 and refused.json()["error"]["reason"] == "unauthenticated"
    r = server.http.post("/v1/admin/reload", headers={"Authorization": "Bearer ops-key"})
    assert r.status_code == 200 and r.json()["result"] == "success"


# --- the arbitrary-style (WCT) levels reload with the named styles --------------------------------------
def painted(server: LiveServer) -> httpx.Response:
    from tests.arbitrary_models import painting

    files = {
        "image": ("p.png", PHOTO, "image/png"),
        "style_image": ("art.png", encode_image(painting(3), "png"), "image/png"),
    }
    return server.http.post("/v1/stylize", files=files)


def test_new_decoders_serve_after_the_reload(start_server: StartServer, folder: Path, lite0: Any) -> None:
    import torch

    from service.core.arbitrary.decoder import Decoder, tap_geometry
    from service.core.arbitrary.export import install_decoder
    from tests.arbitrary_models import TINY_TAPS, TINY_WIDTH

    server: LiveServer = start_server(models_dir=folder, warmup=False)
    before = painted(server)
    assert before.status_code == 200 and "stem:1" in before.headers["x-atelier-model-version"]
    torch.manual_seed(99)
    geometry = tap_geometry(lite0, TINY_TAPS[1])
    install_decoder(Decoder(geometry.channels, geometry.stride, TINY_WIDTH), lite0, TINY_TAPS[1], folder, "2")
    report = reload(server)
    assert report["result"] == "success" and "stem:2" in report["loaded"]["custom"]
    assert report["serving"]["custom"] == report["loaded"]["custom"]
    after = painted(server)
    assert after.status_code == 200 and after.headers["x-atelier-model-version"] == report["loaded"]["custom"]
    assert after.content != before.content  # the new decoder paints, not the cached old one


def test_a_broken_decoder_keeps_the_old_levels_and_removing_them_stops_the_path(
    start_server: StartServer, folder: Path
) -> None:
    server: LiveServer = start_server(models_dir=folder, warmup=False)
    before = painted(server)
    entries = read_manifest(folder)
    decoder = next(e for e in entries if e.name == "wct.stem")
    (folder / decoder.file).write_bytes(b"not an onnx model" * 20)  # the manifest's sha256 no longer holds
    report = reload(server)
    assert report["result"] == "partial" and "wct.stem" in report["kept"]["custom"]
    assert report["serving"]["custom"] == before.headers["x-atelier-model-version"]
    again = painted(server)
    assert again.status_code == 200 and again.content == before.content  # the old set, whole
    write_manifest(folder, [e for e in entries if not e.name.startswith(("wct.", "lite0."))])
    report = reload(server)
    assert "custom" in report["removed"] and "custom" not in report["serving"]
    gone = painted(server)
    assert gone.status_code == 424, gone.text
    assert stylize(server).status_code == 200  # the named styles serve on
