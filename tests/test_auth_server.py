"""API keys against real servers on 127.0.0.1, over both transports: open mode as before; with a keys
file, no key / a wrong key / a revoked key refused (401 / UNAUTHENTICATED), a good key served; the rate
limit (429 + Retry-After / RESOURCE_EXHAUSTED + retry-after-s); jobs private to their key; the per-key job
cap; CORS preflights; and SIGHUP re-reading the keys file of a real ``atelier serve`` process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.api.v1 import atelier_pb2 as pb
from service.client import AtelierClient, AtelierClientError
from service.core.imageio import encode_image
from service.server.auth.keys import digest_of
from tests.liveserver import ROOT, LiveServer, ServerProcess, StartServer, server_settings

ORIGIN = "https://app.example"
KEYS = {"alice": "alice-key", "bob": "bob-key", "revokee": "revokee-key"}
LIMITED = ("limited", "limited-key", "0.001:2")  # two calls, then one every 1000 s
ENDLESS = {"size": 48, "steps": 10_000}  # the most steps allowed: runs until cancelled
JOBS_PER_KEY = 2


def keys_text(names: list[str]) -> str:
    lines = ["# test tenants"]
    lines += [f"{n}:{digest_of(KEYS[n]).hex()}" for n in names]
    lines.append(f"{LIMITED[0]}:{digest_of(LIMITED[1]).hex()}:{LIMITED[2]}")
    return "\n".join(lines) + "\n"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "keys"
    path.write_text(keys_text(list(KEYS)))
    return path


@pytest.fixture(scope="module")
def keyed(models_dir: Path, keys_file: Path) -> Iterator[LiveServer]:
    settings = server_settings(
        models_dir,
        api_keys_file=keys_file,
        jobs_per_key=JOBS_PER_KEY,
        job_queue_limit=4,
        cors_origins=[ORIGIN],
    )
    server = LiveServer(settings, warmup=False)
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    return encode_image(chelsea[::8, ::8], "jpeg")


def grpc_code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    code: grpc.StatusCode = info.value.code()
    return code


def submit(server: LiveServer, key: str, photo: bytes) -> httpx.Response:
    files = [("content", ("c.jpg", photo, "image/jpeg")), ("style", ("s.jpg", photo, "image/jpeg"))]
    data = {"options": json.dumps(ENDLESS)}
    return server.http.post("/v1/jobs/gatys", files=files, data=data, headers=bearer(key))


def cancel_and_wait(server: LiveServer, key: str, job_id: str) -> None:
    """Cancel a job and follow its event stream to the end, so its key's job slot is free again."""
    assert server.http.delete(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 200
    with server.http.stream("GET", f"/v1/jobs/{job_id}/events", headers=bearer(key)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == "event: done":
                return
    raise AssertionError("the event stream ended without its done event")


# --- open mode ----------------------------------------------------------------------------------------
def test_open_mode_serves_every_caller_on_both_transports(live: LiveServer) -> None:
    for headers in ({}, bearer("anything"), {"Authorization": "Basic eDp5"}):
        assert live.http.get("/v1/styles", headers=headers).status_code == 200
    assert live.stub.ListStyles(pb.ListStylesRequest(), timeout=30).styles
    with AtelierClient(live.grpc_target, timeout=30, api_key="not-checked") as client:
        assert client.list_styles()
    metrics = live.http.get("/metrics").text
    assert "atelier_requests_by_key_total{" not in metrics  # no keys, no per-key series
    preflight = live.http.options(
        "/v1/styles", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers  # no CORS unless configured


# --- key mode: REST -----------------------------------------------------------------------------------
def test_rest_refuses_no_key_and_wrong_key_and_serves_a_good_one(keyed: LiveServer) -> None:
    r = keyed.http.get("/v1/styles")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    err = error_of(r)
    assert err["reason"] == "unauthenticated" and "Authorization: Bearer <key>" in err["message"]
    r = keyed.http.get("/v1/styles", headers=bearer("wrong-key"))
    assert r.status_code == 401 and "not valid" in error_of(r)["message"]
    assert "WWW-Authenticate" in r.headers
    # Refused before the body is read or the query checked: an upload without a key costs nothing.
    r = keyed.http.post("/v1/stylize", params={"style": "tiny_a"}, content=b"not an image")
    assert r.status_code == 401
    r = keyed.http.get("/v1/styles", headers=bearer(KEYS["alice"]))
    assert r.status_code == 200 and r.json()["styles"]


def test_operational_paths_stay_open(keyed: LiveServer) -> None:
    for path in ("/healthz", "/readyz", "/", "/ui/app.js", "/docs", "/redoc", "/openapi.json", "/metrics"):
        assert keyed.http.get(path).status_code == 200, path
    # /docs can send a key: the API declares the bearer scheme.
    schemes = keyed.http.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {s["scheme"] for s in schemes.values()} == {"bearer"}


def test_metrics_count_calls_by_key_name_never_the_key(keyed: LiveServer) -> None:
    assert keyed.http.get("/v1/styles", headers=bearer(KEYS["bob"])).status_code == 200
    keyed.http.get("/v1/styles", headers=bearer("wrong-key"))
    text = keyed.http.get("/metrics").text
    assert re.search(r'atelier_requests_by_key_total\{code="200",key="bob",method="ListStyles"\} [1-9]', text)
    assert re.search(
        r'atelier_errors_total\{method="ListStyles",reason="unauthenticated",transport="rest"\}', text
    )
    assert not any(key in text for key in KEYS.values()) and "wrong-key" not in text


# --- key mode: gRPC -----------------------------------------------------------------------------------
def test_grpc_refuses_no_key_and_wrong_key_and_serves_a_good_one(keyed: LiveServer) -> None:
    request = pb.ListStylesRequest()
    assert grpc_code(lambda: keyed.stub.ListStyles(request, timeout=30)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = (("authorization", "Bearer wrong-key"),)
    assert grpc_code(lambda: keyed.stub.ListStyles(request, timeout=30, metadata=wrong)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    with AtelierClient(keyed.grpc_target, timeout=30) as client, pytest.raises(AtelierClientError) as info:
        client.list_styles()
    assert "Bearer" in info.value.message
    with AtelierClient(keyed.grpc_target, timeout=30, api_key=KEYS["alice"]) as client:
        assert [s.name for s in client.list_styles()]
    # The health service stays open: probes carry no key.
    with grpc.insecure_channel(keyed.grpc_target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- revocation without a restart ---------------------------------------------------------------------
def test_a_revoked_key_stops_working_after_the_reload_on_both_transports(
    keyed: LiveServer, keys_file: Path
) -> None:
    key = KEYS["revokee"]
    assert keyed.http.get("/v1/styles", headers=bearer(key)).status_code == 200
    with AtelierClient(keyed.grpc_target, timeout=30, api_key=key) as client:
        client.list_styles()
        keys_file.write_text(keys_text(["alice", "bob"]))
        keyed.run(keyed.server.reloads.run())  # what the SIGHUP handler runs
        with pytest.raises(AtelierClientError) as info:
            client.list_styles()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert keyed.http.get("/v1/styles", headers=bearer(key)).status_code == 401
    assert keyed.http.get("/v1/styles", headers=bearer(KEYS["alice"])).status_code == 200


# --- rate limit ---------------------------------------------------------------------------------------
def test_rate_limit_is_429_with_retry_after_and_resource_exhausted(keyed: LiveServer) -> None:
    key = LIMITED[1]
    assert [keyed.http.get("/v1/styles", headers=bearer(key)).status_code for _ in range(2)] == [200, 200]
    r = keyed.http.get("/v1/styles", headers=bearer(key))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    err = error_of(r)
    assert err["reason"] == "resource_exhausted" and "'limited' is over its rate limit" in err["message"]
    # The bucket is the key's, whichever transport it calls through.
    with pytest.raises(grpc.RpcError) as info:
        keyed.stub.ListStyles(
            pb.ListStylesRequest(), timeout=30, metadata=(("authorization", f"Bearer {key}"),)
        )
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers: dict[str, Any] = dict(info.value.trailing_metadata() or ())  # type: ignore[arg-type]
    assert float(trailers["retry-after-s"]) > 1
    assert keyed.http.get("/v1/styles", headers=bearer(KEYS["alice"])).status_code == 200  # others unaffected


# --- jobs per key -------------------------------------------------------------------------------------
def test_a_key_sees_and_cancels_only_its_own_jobs(keyed: LiveServer, photo: bytes) -> None:
    alice, bob = KEYS["alice"], KEYS["bob"]
    r = submit(keyed, alice, photo)
    assert r.status_code == 202
    job_id = r.json()["id"]
    try:
        unknown = keyed.http.get(f"/v1/jobs/{'0' * 32}", headers=bearer(bob))
        for method, path in (
            ("GET", ""),
            ("DELETE", ""),
            ("GET", "/result"),
            ("GET", "/events"),
        ):
            other = keyed.http.request(method, f"/v1/jobs/{job_id}{path}", headers=bearer(bob))
            assert other.status_code == 404, (method, path)
            # Exactly what an id that never existed answers: the id's existence does not leak.
            assert error_of(other)["reason"] == error_of(unknown)["reason"] == "unknown_job"
            assert error_of(other)["message"] == error_of(unknown)["message"].replace("0" * 32, job_id)
        assert keyed.http.get(f"/v1/jobs/{job_id}", headers=bearer(alice)).json()["state"] in (
            "queued",
            "running",
        )
    finally:
        cancel_and_wait(keyed, alice, job_id)

    # A job started over gRPC belongs to the key that started it, too.
    with AtelierClient(keyed.grpc_target, timeout=60, api_key=alice) as client:
        stream = client.gatys(photo, [photo], ENDLESS)
        first = next(iter(stream))
        assert keyed.http.get(f"/v1/jobs/{first.job_id}", headers=bearer(bob)).status_code == 404
        assert keyed.http.get(f"/v1/jobs/{first.job_id}", headers=bearer(alice)).status_code == 200
        cancel_and_wait(keyed, alice, first.job_id)
        stream.cancel()


def test_per_key_job_cap_leaves_the_queue_to_others(keyed: LiveServer, photo: bytes) -> None:
    alice, bob = KEYS["alice"], KEYS["bob"]
    held = [submit(keyed, alice, photo) for _ in range(JOBS_PER_KEY)]
    assert [r.status_code for r in held] == [202] * JOBS_PER_KEY
    ids = [(alice, r.json()["id"]) for r in held]
    try:
        r = submit(keyed, alice, photo)
        assert r.status_code == 429 and "Retry-After" in r.headers
        assert f"already has {JOBS_PER_KEY} jobs" in error_of(r)["message"]
        with (
            AtelierClient(keyed.grpc_target, timeout=60, api_key=alice) as client,
            pytest.raises(AtelierClientError) as info,
        ):
            list(client.gatys(photo, [photo], ENDLESS))
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and info.value.retry_after_s
        r = submit(keyed, bob, photo)  # the shared queue has room: the cap is per key
        assert r.status_code == 202
        ids.append((bob, r.json()["id"]))
    finally:
        for key, job_id in ids:
            cancel_and_wait(keyed, key, job_id)
    r = submit(keyed, alice, photo)  # finished jobs free the key's slots
    assert r.status_code == 202
    cancel_and_wait(keyed, alice, r.json()["id"])


# --- CORS ---------------------------------------------------------------------------------------------
def test_cors_preflight_allows_the_configured_origin_and_the_authorization_header(keyed: LiveServer) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    r = keyed.http.options("/v1/stylize", headers={"Origin": ORIGIN, **ask})
    assert r.status_code == 200  # answered before authentication: a preflight carries no key
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in r.headers  # keys are headers, never cookies
    r = keyed.http.options("/v1/stylize", headers={"Origin": "https://evil.example", **ask})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    # A cross-origin call from the allowed page: its answers (errors included) are readable there.
    r = keyed.http.get("/v1/styles", headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "www-authenticate" in r.headers["access-control-expose-headers"].lower()
    r = keyed.http.get("/v1/styles", headers={"Origin": "https://evil.example", **bearer(KEYS["alice"])})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# --- the process: start-up checks and SIGHUP ----------------------------------------------------------
def test_a_malformed_keys_file_refuses_to_start_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "keys"
    bad.write_text(f"# ok\nalice:{digest_of('k').hex()}\nbob:not-a-digest\n")
    env = {"ATELIER_API_KEYS_FILE": str(bad), "ATELIER_MODELS_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--grpc-port", "0", "--http-port", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert f"{bad}, line 3" in out.stderr and "listening" not in out.stderr


def test_sighup_reloads_the_keys_of_a_running_serve_process(
    start_server: StartServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(keys_text(["alice", "revokee"]))
    server: ServerProcess = start_server(process=True, api_keys_file=keys, metrics_require_key=True)
    server.log.wait_for(re.compile(r"API keys: 3 from"), timeout=60)
    key = KEYS["revokee"]
    with AtelierClient(server.grpc_target, timeout=120, api_key=key) as client:
        client.wait_ready(timeout=120)
        client.list_styles()
        assert server.http.get("/v1/styles", headers=bearer(key)).status_code == 200
        r = server.http.get("/metrics")
        assert r.status_code == 401 and error_of(r)["reason"] == "unauthenticated"
        assert server.http.get("/metrics", headers=bearer(key)).status_code == 200

        keys.write_text(keys_text(["alice", "bob"]))
        server.proc.send_signal(signal.SIGHUP)
        server.log.wait_for(re.compile(r"API keys reloaded .*added: bob; removed: revokee"), timeout=30)
        with pytest.raises(AtelierClientError) as info:
            client.list_styles()
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert server.http.get("/v1/styles", headers=bearer(key)).status_code == 401
    assert server.http.get("/v1/styles", headers=bearer(KEYS["bob"])).status_code == 200
    assert server.proc.poll() is None  # SIGHUP reloads; it never stops the server
    assert key not in server.log.text and KEYS["bob"] not in server.log.text
