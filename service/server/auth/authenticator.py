"""Who is calling: API keys from the keys file, checked in constant time, and a rate limit per key.

Both transports call ``Authenticator.check_async`` with the call's ``authorization`` value (REST header, gRPC
metadata) in the one place each tracks a call, so a refused call is counted and answered like any other
error (``Unauthenticated`` -> 401 / UNAUTHENTICATED, ``ResourceExhausted`` -> 429 / RESOURCE_EXHAUSTED with
the retry hint). ``check`` returns the key's name, which is what logs, metrics and job ownership use; the
key itself is hashed at once and never stored, logged or compared in plain.

Without a keys file the service is open: ``check`` returns "" for every caller and nothing is limited,
exactly as before keys existed. ``reload`` re-reads the file (SIGHUP): new keys work, removed keys stop
working, unchanged keys keep their bucket; a broken file is logged and the old keys stay in force.
With ``ATELIER_RATE_LIMIT_URL`` the buckets live in Redis, shared by every replica (``shared_buckets.py``),
and the local ones answer only while Redis does not.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from service.core.errors import ResourceExhausted, Unauthenticated
from service.server.auth.buckets import Clock, Limit, TokenBucket
from service.server.auth.keys import KeyEntry, KeysFileError, digest_of, read_keys

if TYPE_CHECKING:
    from service.server.auth.shared_buckets import SharedBuckets
    from service.settings import Settings

log = logging.getLogger("atelier.auth")

MISSING_MESSAGE = (
    "This server requires an API key: send it as 'Authorization: Bearer <key>' "
    "(REST header or gRPC metadata)."
)
INVALID_MESSAGE = "The API key is not valid (unknown or revoked)."


@dataclass(frozen=True)
class _Key:
    entry: KeyEntry
    limit: Limit


class Authenticator:
    """API keys and their buckets; thread-safe (the keys are swapped whole on reload)."""

    def __init__(
        self,
        keys_file: Path | None,
        default_rps: float = 0.0,
        default_burst: int = 0,
        *,
        metrics_require_key: bool = False,
        clock: Clock = time.monotonic,
        shared: SharedBuckets | None = None,
    ) -> None:
        """Raises ``KeysFileError`` (a ``ValueError``: the CLI prints it and exits) for a bad file.
        ``shared``: Redis buckets every replica uses (``check_async``); the local ones stay the fallback."""
        self.keys_file = keys_file
        self.default_rps = default_rps
        self.default_burst = default_burst
        self.metrics_require_key = metrics_require_key and keys_file is not None
        self._clock = clock
        self.shared = shared
        self._lock = threading.Lock()
        self._keys: tuple[_Key, ...] = ()
        self._buckets: dict[str, TokenBucket] = {}
        if keys_file is not None:
            self._install(read_keys(keys_file))

    @classmethod
    def from_settings(cls, s: Settings) -> Authenticator:
        shared = None
        if s.rate_limit_url and s.api_keys_file is not None:
            from service.server.auth.shared_buckets import SharedBuckets

            shared = SharedBuckets(s.rate_limit_url)
        return cls(
            s.api_keys_file,
            s.default_key_rps,
            s.default_key_burst,
            metrics_require_key=s.metrics_require_key,
            shared=shared,
        )

    @classmethod
    def open(cls) -> Authenticator:
        """No keys file: every caller is served (tests and embedded servers)."""
        return cls(None)

    # --- state ----------------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.keys_file is not None

    @property
    def names(self) -> list[str]:
        return [k.entry.name for k in self._keys]

    def describe(self) -> str:
        """One line for the start-up log."""
        if not self.enabled:
            return "API keys: none configured (ATELIER_API_KEYS_FILE unset): the API is open to every caller"
        default = "unlimited" if self.default_rps <= 0 else f"{self.default_rps:g} rps"
        where = "shared by the replicas in Redis" if self.shared is not None else "per process"
        return (
            f"API keys: {len(self._keys)} from {self.keys_file} (default rate {default}, limits {where}; "
            "SIGHUP re-reads the file)"
        )

    def _limit_of(self, entry: KeyEntry) -> Limit:
        if entry.rps is None:
            return Limit.of(self.default_rps, self.default_burst)
        return Limit.of(entry.rps, entry.burst if entry.burst is not None else 0)

    def _install(self, entries: list[KeyEntry]) -> None:
        keys = tuple(_Key(e, self._limit_of(e)) for e in entries)
        with self._lock:
            old = self._buckets
            buckets: dict[str, TokenBucket] = {}
            for k in keys:
                kept = old.get(k.entry.name)
                # An unchanged key keeps its bucket: a reload must not hand every tenant a fresh burst.
                buckets[k.entry.name] = (
                    kept if kept is not None and kept.limit == k.limit else TokenBucket(k.limit, self._clock)
                )
            self._keys, self._buckets = keys, buckets

    def reload(self) -> bool:
        """Re-read the keys file; True when the new keys are in force. A bad file keeps the old keys."""
        if self.keys_file is None:
            return False
        try:
            entries = read_keys(self.keys_file)
        except KeysFileError as exc:
            log.error("API keys not reloaded, the previous %d stay in force: %s", len(self._keys), exc)
            return False
        before = set(self.names)
        self._install(entries)
        after = set(self.names)
        log.info(
            "API keys reloaded from %s: %d keys (added: %s; removed: %s)",
            self.keys_file,
            len(after),
            ", ".join(sorted(after - before)) or "none",
            ", ".join(sorted(before - after)) or "none",
        )
        return True

    # --- per call -------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> str:
        """The key's name for an ``authorization`` value ("" in open mode); ``Unauthenticated`` if none fits."""
        if not self.enabled:
            return ""
        key = _bearer(authorization)
        if key is None:
            raise Unauthenticated(MISSING_MESSAGE)
        digest = digest_of(key)
        found = ""
        # Every entry is compared, in constant time each, so neither the answer nor how long it took
        # says which (or how much of a) key matched.
        for k in self._keys:
            if hmac.compare_digest(digest, k.entry.digest):
                found = k.entry.name
        if not found:
            raise Unauthenticated(INVALID_MESSAGE)
        return found

    def _bucket(self, name: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(name)
        if bucket is None:  # revoked between authenticate and admit
            raise Unauthenticated(INVALID_MESSAGE)
        return bucket

    def admit(self, name: str) -> None:
        """Take one request from ``name``'s local bucket; ``ResourceExhausted`` with the wait when it is
        empty."""
        if not name:
            return
        bucket = self._bucket(name)
        _refuse(name, bucket.limit, bucket.take())

    async def admit_async(self, name: str) -> None:
        """``admit`` against the buckets shared in Redis when configured (the local bucket when Redis does
        not answer, or when there is none)."""
        if not name:
            return
        bucket = self._bucket(name)
        wait = None if self.shared is None else await self.shared.take(name, bucket.limit)
        _refuse(name, bucket.limit, bucket.take() if wait is None else wait)

    async def check_async(self, authorization: str | None) -> str:
        """``check`` for the transports: the rate limit shared by the replicas when configured."""
        name = self.authenticate(authorization)
        await self.admit_async(name)
        return name

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()

    def check(self, authorization: str | None) -> str:
        """``authenticate`` then ``admit``: the caller's key name, or "" when the service is open."""
        name = self.authenticate(authorization)
        self.admit(name)
        return name


def _refuse(name: str, limit: Limit, wait: float) -> None:
    if wait > 0:
        raise ResourceExhausted(
            f"API key {name!r} is over its rate limit ({limit.rate:g} requests/s, burst {limit.burst}).",
            retry_after_s=math.ceil(wait * 1000) / 1000,
        )


def _bearer(authorization: str | None) -> str | None:
    """The key of ``Bearer <key>`` (scheme case-insensitive, RFC 6750); None for anything else."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return key
