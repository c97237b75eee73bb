"""TLS and mTLS on both transports of a real server (127.0.0.1, port 0), with a throwaway CA per module.

Handshakes good and bad: a client that trusts the CA gets through; one that trusts another CA, or speaks
plaintext, does not; with ``ATELIER_TLS_CLIENT_CA`` a client without a certificate, or with one from
another CA, is refused and one with a certificate the CA signed gets through. Settings that cannot work
stop the server before it listens.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import pytest

from service.cli import main as atelier
from service.client import AtelierClient, AtelierClientError
from service.server.app import ServerOptions
from service.server.tls import TlsConfigError
from service.settings import Settings
from tests.certs import CertificateAuthority, Pair
from tests.conftest import StartServer

FAIL_S = 2.0  # a refused handshake is retried by gRPC until the deadline: keep that short


class Certs:
    def __init__(self, folder: Path) -> None:
        self.ca = CertificateAuthority(folder / "ca")
        self.server = self.ca.issue("server", server=True)
        self.client = self.ca.issue("client", server=False)
        self.other_ca = CertificateAuthority(folder / "other", name="Some Other CA")
        self.other_client = self.other_ca.issue("client", server=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


def https(ca: Path, client: Pair | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return httpx.Client(verify=context, timeout=10)


def grpc_client(port: int, ca: Path | None, client: Pair | None = None, timeout: float = 10) -> AtelierClient:
    return AtelierClient(
        f"127.0.0.1:{port}",
        timeout=timeout,
        tls_ca=ca,
        tls_cert=client.cert if client else None,
        tls_key=client.key if client else None,
    )


def test_tls_on_both_transports(start_server: StartServer, certs: Certs) -> None:
    live = start_server(tls_cert=certs.server.cert, tls_key=certs.server.key, load_models=False)
    grpc_port, url = live.server.grpc_port, f"https://127.0.0.1:{live.server.http_port}"
    with grpc_client(grpc_port, certs.ca.pem) as client:
        assert client.health() == "NOT_SERVING"  # the handshake worked; the models were not loaded
    with https(certs.ca.pem) as http:
        assert http.get(f"{url}/healthz").status_code == 200
        # Over HTTPS the request is marked secure end to end (uvicorn sets the scheme from the transport).
        assert http.get(f"{url}/readyz").status_code == 503

    # A client that does not trust the CA refuses the server's certificate, on both transports.
    with grpc_client(grpc_port, certs.other_ca.pem, timeout=FAIL_S) as client:
        with pytest.raises(AtelierClientError) as err:
            client.health()
        assert err.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    with (
        https(certs.other_ca.pem) as http,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        http.get(f"{url}/healthz")
    # Plaintext gets nothing from a TLS port.
    with grpc_client(grpc_port, None, timeout=FAIL_S) as client, pytest.raises(AtelierClientError):
        client.health()
    with httpx.Client(timeout=5) as plain, pytest.raises(httpx.TransportError):
        plain.get(f"http://127.0.0.1:{live.server.http_port}/healthz")


def test_mtls_requires_a_client_certificate_from_the_ca(
    start_server: StartServer, certs: Certs, capsys: pytest.CaptureFixture[str]
) -> None:
    live = start_server(
        tls_cert=certs.server.cert, tls_key=certs.server.key, tls_client_ca=certs.ca.pem, warmup=False
    )
    grpc_port, url = live.server.grpc_port, f"https://127.0.0.1:{live.server.http_port}/healthz"

    with grpc_client(grpc_port, certs.ca.pem, certs.client) as client:
        assert client.health() == "SERVING"
        assert client.list_styles()  # a real call, not only the health service
    with https(certs.ca.pem, certs.client) as http:
        assert http.get(url).status_code == 200

    for pair in (None, certs.other_client):  # no certificate; one from another CA
        with (
            grpc_client(grpc_port, certs.ca.pem, pair, timeout=FAIL_S) as client,
            pytest.raises(AtelierClientError),
        ):
            client.health()
        with https(certs.ca.pem, pair) as http, pytest.raises(httpx.TransportError):
            http.get(url)

    # The CLI's probe command speaks mTLS too (exit 0 only when the server says SERVING).
    args = ["health", "--target", f"127.0.0.1:{grpc_port}", "--tls-ca", str(certs.ca.pem)]
    client_args = ["--tls-cert", str(certs.client.cert), "--tls-key", str(certs.client.key)]
    assert atelier([*args, *client_args]) == 0
    assert capsys.readouterr().out.strip() == "SERVING"
    assert atelier([*args, "--timeout", str(FAIL_S)]) == 1  # no client certificate: refused


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def test_tls_settings_that_cannot_work_stop_the_start(certs: Certs, tmp_path: Path) -> None:
    cert, key = certs.server.cert, certs.server.key
    cases: list[tuple[dict[str, object], str]] = [
        ({"tls_cert": cert}, "ATELIER_TLS_CERT is set without ATELIER_TLS_KEY"),
        ({"tls_key": key}, "ATELIER_TLS_KEY is set without ATELIER_TLS_CERT"),
        ({"tls_client_ca": certs.ca.pem}, "ATELIER_TLS_CLIENT_CA is set but TLS is off"),
        ({"tls_cert": tmp_path / "absent.crt", "tls_key": key}, "absent.crt cannot be read"),
        ({"tls_cert": cert, "tls_key": certs.client.key}, "do not form a usable pair"),
        ({"tls_cert": key, "tls_key": key}, "do not form a usable pair"),
        ({"tls_cert": cert, "tls_key": key, "tls_client_ca": key}, "no usable CA certificate"),
    ]
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    cases.append(({"tls_cert": tmp_path / "empty.pem", "tls_key": key}, "is not a PEM file"))
    for values, message in cases:
        with pytest.raises(TlsConfigError, match=message):
            ServerOptions.from_settings(settings(**values))
    assert ServerOptions.from_settings(settings(tls_cert=cert, tls_key=key)).tls is not None
    assert ServerOptions.from_settings(settings()).tls is None


def test_serve_refuses_a_certificate_without_a_key(
    certs: Certs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATELIER_TLS_CERT", str(certs.server.cert))
    monkeypatch.delenv("ATELIER_TLS_KEY", raising=False)
    assert atelier(["serve", "--grpc-port", "0", "--http-port", "0", "--host", "127.0.0.1"]) == 1
    err = capsys.readouterr().err
    assert "ATELIER_TLS_CERT is set without ATELIER_TLS_KEY" in err
