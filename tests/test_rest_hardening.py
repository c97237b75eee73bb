"""Errors about the server's own files (missing or unreadable weights) name no server paths to the caller,
on either transport; the server log has them."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from service.api.v1 import atelier_pb2 as pb
from service.core.errors import ModelLoadError, WeightsNotFound
from service.server.errors import public_message
from service.server.transport.rest.errors import error_response
from tests.conftest import StartServer

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(chelsea).resize((64, 48)).save(buf, "JPEG")
    return buf.getvalue()


def test_missing_weights_name_no_server_path(
    start_server: StartServer, tmp_path: Path, photo: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "operator-only" / "vgg16-397923af.pth"
    live = start_server(vgg16_weights=secret, warmup=False)
    with caplog.at_level(logging.WARNING, logger="service.server.errors"):
        r = live.http.post("/v1/classify", params={"backbone": "vgg16"}, content=photo, headers=JPEG)
        with pytest.raises(grpc.RpcError) as err:
            live.stub.Classify(pb.ClassifyRequest(image=photo, backbone="vgg16"), timeout=60)
    assert r.status_code == 424, r.text
    body = r.json()["error"]
    assert body["reason"] == "weights_not_found"
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for told in (body["message"], err.value.details()):
        assert "vgg16" in told and "vgg16-397923af.pth" in told  # what is missing, by name
        assert str(tmp_path) not in told and "/" not in told, told  # but not where the server looks
    # The operator still learns where: the full message is logged once per call.
    logged = [rec.getMessage() for rec in caplog.records if str(secret) in rec.getMessage()]
    assert len(logged) == 2, caplog.text


def test_server_side_errors_without_a_public_message_have_paths_redacted() -> None:
    err = ModelLoadError("Could not read ONNX model /srv/atelier/models/x.onnx: truncated")
    assert public_message(err) == "Could not read ONNX model <path on the server>: truncated"
    assert public_message(WeightsNotFound("at ~/weights/v.pth.", public="not installed")) == "not installed"
    body = error_response(WeightsNotFound("file /opt/w.pth missing")).body
    assert b"/opt" not in body
