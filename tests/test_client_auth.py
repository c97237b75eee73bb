"""``AtelierClient(api_key=..., tls_ca=...)`` against a real gRPC server on 127.0.0.1 that records metadata.

The Atelier server does not check keys or serve TLS yet, so the server here is a small real one whose
ListStyles answers with what it was sent; the TLS certificate is made by the ``openssl`` command.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.client import AtelierClient, AtelierClientError


class Recorder(pb_grpc.AtelierServicer):
    """Answers ListStyles with one style whose name is the request's authorization metadata."""

    def ListStyles(self, request: Any, context: grpc.ServicerContext) -> Any:
        auth = dict(context.invocation_metadata()).get("authorization", "<none>")
        return pb.ListStylesResponse(styles=[pb.StyleInfo(name=str(auth))])


def _server(credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_AtelierServicer_to_server(Recorder(), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


@pytest.fixture()
def plain_port() -> Iterator[int]:
    server, port = _server()
    yield port
    server.stop(None)


def test_api_key_goes_as_bearer_metadata(plain_port: int) -> None:
    with AtelierClient(f"127.0.0.1:{plain_port}", timeout=10, api_key="s3cret") as client:
        assert [s.name for s in client.list_styles()] == ["Bearer s3cret"]
    with AtelierClient(f"127.0.0.1:{plain_port}", timeout=10) as client:
        assert [s.name for s in client.list_styles()] == ["<none>"]  # no key, no header


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the test certificate is made with openssl")
def test_tls_ca_verifies_the_server(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    server, port = _server(creds)
    try:
        with AtelierClient(f"localhost:{port}", timeout=10, api_key="k", tls_ca=cert) as client:
            assert [s.name for s in client.list_styles()] == ["Bearer k"]
        # A plaintext client cannot talk to the TLS port: the CA option is what makes it work.
        with AtelierClient(f"localhost:{port}", timeout=3) as client, pytest.raises(AtelierClientError):
            client.list_styles()
    finally:
        server.stop(None)
