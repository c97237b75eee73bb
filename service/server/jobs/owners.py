"""Tenancy of the job queue: which API key holds which jobs, a cap per key, and fair dispatch.

Without keys (open mode) every job's owner is None, the cap never applies and dispatch is first in,
first out, as it always was. With keys, a key may hold at most ``limit`` jobs queued or running (so one
tenant cannot fill the shared queue), and a free worker takes the oldest job of the key that has the
fewest jobs running, ties going to the key served longest ago: a tenant that queued eight jobs does not
make a tenant that queued one wait behind all eight.

Not thread-safe on its own: ``JobManager`` calls it under its lock.
"""

from __future__ import annotations

import collections
import itertools
from typing import TYPE_CHECKING

from service.core.errors import ResourceExhausted

if TYPE_CHECKING:
    from service.server.jobs.job import LocalJob as Job


class OwnerLedger:
    """Jobs held and running per owner; ``limit`` 0 means no cap."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("the jobs-per-key limit must be >= 0")
        self.limit = limit
        self._held: collections.Counter[str] = collections.Counter()  # queued + running
        self._running: collections.Counter[str | None] = collections.Counter()
        self._served: dict[str | None, int] = {}  # owner -> dispatch sequence number of its last job
        self._sequence = itertools.count()

    def held(self, owner: str | None) -> int:
        return self._held[owner] if owner is not None else 0

    def admit(self, owner: str | None, retry_after_s: float) -> None:
        """Count a new job of ``owner``; ``ResourceExhausted`` when the key already holds ``limit``."""
        if owner is None:
            return
        if self.limit and self._held[owner] >= self.limit:
            raise ResourceExhausted(
                f"API key {owner!r} already has {self._held[owner]} jobs queued or running (the limit per "
                "key); wait for one to finish or cancel one.",
                retry_after_s=retry_after_s,
            )
        self._held[owner] += 1

    def pick(self, pending: collections.deque[Job]) -> Job:
        """Remove and return the next job to run from a non-empty ``pending`` (oldest first)."""
        if all(job.owner is None for job in pending):  # open mode: plain FIFO, no scan
            job = pending.popleft()
        else:
            best = min(
                range(len(pending)),
                key=lambda i: (
                    self._running[pending[i].owner],
                    self._served.get(pending[i].owner, -1),
                    i,
                ),
            )
            job = pending[best]
            del pending[best]
        self._running[job.owner] += 1
        self._served[job.owner] = next(self._sequence)
        return job

    def finished(self, owner: str | None, was_running: bool) -> None:
        """A job of ``owner`` ended (ran to an end, or was cancelled while queued)."""
        if was_running:
            self._running[owner] -= 1
            if self._running[owner] <= 0:
                del self._running[owner]
        if owner is not None:
            self._held[owner] -= 1
            if self._held[owner] <= 0:
                del self._held[owner]
                self._served.pop(
                    owner, None
                )  # an idle key is forgotten: the table stays as small as the queue
