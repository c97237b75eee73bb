"""Connection limits of a real server (127.0.0.1, port 0): an oversized request head is refused, a request
head that does not arrive in time is dropped, a connection cap answers 503, idle gRPC connections are
closed, and the server keeps serving afterwards. Raw sockets, so what is sent is exactly what is tested."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.server.sockets import SocketLimits
from service.settings import Settings
from tests.conftest import StartServer
from tests.liveserver import LiveServer, server_settings

WAIT_S = 30.0  # an upper bound for a socket read, never a measured duration
HEAD_TIMEOUT_S = 0.5
PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished


@pytest.fixture(scope="module")
def guarded(models_dir: Path) -> Iterator[LiveServer]:
    """A server with a short head timeout, models not loaded (the limits sit in front of everything)."""
    server = LiveServer(server_settings(models_dir, http_header_timeout_s=HEAD_TIMEOUT_S))
    try:
        yield server.start(load_models=False)
    finally:
        server.close()


def connect(live: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", live.server.http_port), timeout=WAIT_S)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def assert_still_serving(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz", timeout=WAIT_S).status_code == 200


def test_an_oversized_request_head_is_refused(guarded: LiveServer) -> None:
    limit = Settings(_env_file=None).http_max_header_bytes
    # Just above the limit: the server answers 431 and closes.
    with connect(guarded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * limit))
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:100]
    # 16 MB: refused long before the last byte (the send fails, or the reply is the 431).
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (16 << 20) + b"\r\n\r\n"
    with connect(guarded) as sock:
        try:
            sock.sendall(big)
            reply = read_until_closed(sock)
        except (BrokenPipeError, ConnectionResetError):
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 200"), "a 16 MB request head was accepted"
    # A head under the limit is fine.
    r = httpx.get(f"{guarded.url}/healthz", headers={"X-Fine": "a" * (limit // 2)}, timeout=WAIT_S)
    assert r.status_code == 200


def test_half_sent_request_heads_are_dropped_after_the_timeout(guarded: LiveServer) -> None:
    socks = [connect(guarded) for _ in range(50)]
    try:
        for sock in socks[:40]:
            sock.sendall(PARTIAL_HEAD)  # 40 half-sent heads; the last 10 connections send nothing at all
        replies = [read_until_closed(sock) for sock in socks]  # returns only once the server closes
    finally:
        for sock in socks:
            sock.close()
    assert all(r.startswith(b"HTTP/1.1 408 ") for r in replies), {r[:40] for r in replies}
    assert_still_serving(guarded)


def test_a_kept_alive_connection_gets_the_timeout_for_its_next_head(guarded: LiveServer) -> None:
    with connect(guarded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b'{"status":"ok"}' not in first:  # the whole first response (head and body may come apart)
            chunk = sock.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 "), first
        sock.sendall(PARTIAL_HEAD)  # the second request never finishes its head
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    assert_still_serving(guarded)


def test_a_slow_but_complete_head_is_served(guarded: LiveServer) -> None:
    # The head arrives in pieces, the whole of it within the timeout: the timer must not fire early.
    with connect(guarded) as sock:
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200 ")


def test_connections_above_the_cap_get_503(start_server: StartServer) -> None:
    live = start_server(http_max_connections=2, load_models=False)
    idle = [connect(live) for _ in range(2)]
    try:
        with connect(live) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in idle:
            sock.close()


def test_grpc_closes_idle_connections(start_server: StartServer) -> None:
    live = start_server(grpc_max_connection_idle_s=0.3, load_models=False)
    went_idle = threading.Event()
    seen: list[grpc.ChannelConnectivity] = []

    def watch(state: grpc.ChannelConnectivity) -> None:
        seen.append(state)
        if grpc.ChannelConnectivity.READY in seen and state is grpc.ChannelConnectivity.IDLE:
            went_idle.set()

    with grpc.insecure_channel(live.grpc_target) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        channel.subscribe(watch)
        # The server sends GOAWAY once no call has been open for the idle time: the channel leaves READY.
        assert went_idle.wait(WAIT_S), seen
        # A new call reconnects.
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        channel.unsubscribe(watch)


def test_grpc_options_follow_the_settings() -> None:
    s = Settings(_env_file=None, grpc_keepalive_permit_without_calls=True, grpc_max_connection_age_s=90)
    options = dict(SocketLimits.from_settings(s).grpc_options())
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.max_connection_age_ms"] == 90_000
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == round(s.grpc_min_ping_interval_s * 1000)
    no_idle = Settings(_env_file=None, grpc_max_connection_idle_s=0)
    assert "grpc.max_connection_idle_ms" not in dict(SocketLimits.from_settings(no_idle).grpc_options())
