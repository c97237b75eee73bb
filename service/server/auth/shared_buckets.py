"""Per-key rate limits shared by every replica, in Redis (``ATELIER_RATE_LIMIT_URL``).

Each replica keeps its own ``TokenBucket`` otherwise, so behind a load balancer N replicas give a key N
times its rate. With a Redis URL every replica asks Redis instead, with one Lua script per request that
runs GCRA, the generic cell rate algorithm (the ATM Forum's traffic contract, ITU-T I.371; the same
algorithm as the redis-cell module and Brandur Leach's ``throttled``): Redis keeps one number per API
key, its theoretical arrival time ``tat``. A request at ``now`` would move it to
``max(tat, now) + 1/rate``; it is allowed when that is at most ``burst / rate`` ahead of ``now``, and
otherwise refused with the difference as the wait. That is a token bucket of ``burst`` tokens refilled
at ``rate`` per second, the local buckets' contract, in one atomic step and one key that expires when
idle. The clock is Redis's own (``TIME``), so replicas with skewed clocks still agree.

If Redis cannot be reached (or answers too slowly) the call is not refused for it: the replica falls back
to its local bucket for that key and logs it (at most once a minute), so an outage of the limiter never
becomes an outage of the API.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from service.server.auth.buckets import Limit

log = logging.getLogger("atelier.auth")

PREFIX = "atelier:rate:"
TIMEOUT_S = 0.25  # a limiter slower than this is treated as down: the local bucket answers instead
WARN_EVERY_S = 60.0

# KEYS[1] the key's counter; ARGV[1] seconds per request (1 / rate), ARGV[2] the burst.
# Returns "0" when allowed, else the seconds to wait (as a string: Lua numbers become integers in replies).
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - burst * interval
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""


class SharedBuckets:
    """GCRA buckets in Redis; ``take`` answers like ``TokenBucket.take`` (0.0 granted, else the wait)."""

    def __init__(self, url: str, client: Redis | None = None) -> None:
        from redis.asyncio import Redis

        self.url = url
        self._redis = client or Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S, health_check_interval=30
        )
        self._script = self._redis.register_script(GCRA)
        self._warned_at = -WARN_EVERY_S

    async def take(self, name: str, limit: Limit) -> float | None:
        """One request of key ``name``: 0.0 when granted, else the seconds to wait; None when Redis could not
        answer (the caller uses its local bucket)."""
        if limit.unlimited:
            return 0.0
        try:
            answer = await self._script(keys=[PREFIX + name], args=[1.0 / limit.rate, limit.burst])
        except Exception as exc:  # redis errors, timeouts, a closed connection: never the caller's fault
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                log.warning("shared rate limits unavailable (%s); each replica limits keys alone", exc)
            return None
        return float(answer)

    async def close(self) -> None:
        await self._redis.aclose()
