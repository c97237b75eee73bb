"""API-key rate limits shared by the replicas through a real redis-server (``ATELIER_RATE_LIMIT_URL``,
``service/server/auth/shared_buckets.py``): two authenticators (two replicas) draw on one bucket per key,
the wait they answer is the bucket's, a Redis that is gone leaves each replica limiting alone (no error),
and a real server refuses a call with 429 when another replica spent the key's burst."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.core.errors import ResourceExhausted
from service.core.imageio import encode_image
from service.server.auth.authenticator import Authenticator
from service.server.auth.shared_buckets import SharedBuckets
from tests.liveserver import StartServer
from tests.queuekit import RedisServer
from tests.test_auth import line, write


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.kill()


def replica(keys: Path, url: str) -> Authenticator:
    return Authenticator(keys, shared=SharedBuckets(url))


def admitted(auth: Authenticator, key: str, calls: int) -> tuple[int, list[float]]:
    """How many of ``calls`` checks pass, and the waits of those refused."""

    async def run() -> tuple[int, list[float]]:
        ok, waits = 0, []
        for _ in range(calls):
            try:
                await auth.check_async(f"Bearer {key}")
                ok += 1
            except ResourceExhausted as exc:
                waits.append(exc.retry_after_s)
        await auth.close()
        return ok, waits

    return asyncio.run(run())


def test_two_replicas_share_one_bucket_per_key(redis_server: RedisServer, tmp_path: Path) -> None:
    # 0.2 rps, burst 3: nothing refills during the test, so the counts are exact.
    keys = write(tmp_path / "keys", line("alice", "ka", 0.2, 3), line("bob", "kb", 0.2, 3))
    first, second = replica(keys, redis_server.url), replica(keys, redis_server.url)
    assert admitted(first, "ka", 2) == (2, [])
    ok, waits = admitted(second, "ka", 3)  # one token left for alice, whichever replica she reaches
    assert ok == 1 and len(waits) == 2
    assert all(4.0 < w <= 5.0 for w in waits), waits  # the next token: 1 / 0.2 s after the burst
    assert admitted(second, "kb", 3) == (3, [])  # bob's bucket is his own
    alone = Authenticator(keys)  # without Redis each process has the whole burst again
    assert sum(1 for _ in range(3) if _try(alone, "ka")) == 3


def _try(auth: Authenticator, key: str) -> bool:
    try:
        auth.check(f"Bearer {key}")
    except ResourceExhausted:
        return False
    return True


def test_without_redis_each_replica_limits_alone(tmp_path: Path, caplog: Any) -> None:
    keys = write(tmp_path / "keys", line("alice", "ka", 0.2, 2))
    gone = replica(keys, "redis://127.0.0.1:9/0")  # nothing listens on the discard port
    with caplog.at_level(logging.WARNING, logger="atelier.auth"):
        ok, waits = admitted(gone, "ka", 4)
    assert ok == 2 and len(waits) == 2  # the local bucket answered: limited, never an error
    assert "shared rate limits unavailable" in caplog.text


def test_a_server_refuses_what_another_replica_spent(
    redis_server: RedisServer, start_server: StartServer, tmp_path: Path
) -> None:
    keys = write(tmp_path / "keys", line("carol", "kc", 0.2, 2))
    assert admitted(replica(keys, redis_server.url), "kc", 2) == (2, [])  # "another replica"
    server = start_server(api_keys_file=keys, rate_limit_url=redis_server.url, warmup=False)
    photo = encode_image(np.full((32, 32, 3), 128, np.uint8), "png")
    r = server.http.post(
        "/v1/stylize",
        params={"style": "tiny_a"},
        content=photo,
        headers={"Authorization": "Bearer kc", "Content-Type": "image/png"},
    )
    assert r.status_code == 429, r.text
    assert "'carol' is over its rate limit" in r.json()["error"]["message"]
    assert 0 < float(r.headers["retry-after"]) <= 5
