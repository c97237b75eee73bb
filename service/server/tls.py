"""TLS for both transports from one certificate: ``ATELIER_TLS_CERT`` + ``ATELIER_TLS_KEY`` (PEM) turn on TLS
for gRPC and HTTPS for REST; ``ATELIER_TLS_CLIENT_CA`` (PEM bundle) also requires client certificates
signed by it on both (mTLS).

The files are read and checked once, when the server's options are built, so a wrong combination or an
unreadable file stops ``atelier serve`` before anything listens, with a message naming the setting and the
file, rather than a server that fails every handshake. The check loads the pair into an ``ssl.SSLContext``,
which also proves that the key belongs to the certificate (OpenSSL refuses a mismatched pair).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from service.settings import Settings


class TlsConfigError(ValueError):
    """The TLS settings cannot be used (a cert without a key, an unreadable or invalid file)."""


@dataclass(frozen=True)
class TlsConfig:
    """Checked TLS material: the paths (uvicorn reads them itself) and their PEM bytes (for gRPC)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None  # set: clients must present a certificate signed by it
    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None

    @classmethod
    def from_settings(cls, s: Settings) -> TlsConfig | None:
        """None when TLS is off; raises ``TlsConfigError`` for any setting that cannot work."""
        return load_tls(s.tls_cert, s.tls_key, s.tls_client_ca)

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.client_ca_pem,
            require_client_auth=self.mutual,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` keyword arguments for HTTPS (and required client certificates)."""
        options: dict[str, Any] = {"ssl_certfile": str(self.cert_file), "ssl_keyfile": str(self.key_file)}
        if self.client_ca_file is not None:
            options["ssl_ca_certs"] = str(self.client_ca_file)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return options


def _read(path: Path, setting: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{setting}={path} cannot be read: {exc.strerror or exc}.") from None
    if b"-----BEGIN " not in data:
        raise TlsConfigError(f"{setting}={path} is not a PEM file (no -----BEGIN line).")
    return data


def load_tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsConfig | None:
    """Read and check the TLS files; None when neither a certificate nor a key is set."""
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsConfigError(
                "ATELIER_TLS_CLIENT_CA is set but TLS is off: client certificates need "
                "ATELIER_TLS_CERT and ATELIER_TLS_KEY too."
            )
        return None
    if cert is None or key is None:
        given, missing = (
            ("ATELIER_TLS_CERT", "ATELIER_TLS_KEY")
            if key is None
            else ("ATELIER_TLS_KEY", "ATELIER_TLS_CERT")
        )
        raise TlsConfigError(f"{given} is set without {missing}: TLS needs both the certificate and its key.")
    cert_pem, key_pem = _read(cert, "ATELIER_TLS_CERT"), _read(key, "ATELIER_TLS_KEY")
    ca_pem = _read(client_ca, "ATELIER_TLS_CLIENT_CA") if client_ca is not None else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"ATELIER_TLS_CERT={cert} and ATELIER_TLS_KEY={key} do not form a usable pair "
            f"(a key of another certificate, or an encrypted key?): {exc.reason or exc}."
        ) from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            raise TlsConfigError(
                f"ATELIER_TLS_CLIENT_CA={client_ca} holds no usable CA certificate: {exc.reason or exc}."
            ) from None
    return TlsConfig(cert, key, client_ca, cert_pem, key_pem, ca_pem)
