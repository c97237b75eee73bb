"""Jobs as data: what a slow job is when it must cross a process boundary, and the interface both job
managers satisfy.

A job of the in-process ``JobManager`` is a closure (``JobFunction``) over decoded images and parsed
options. The shared queue (``redis_jobs.py``, run by ``atelier worker``) cannot ship a closure, so every
slow job is also described by a ``JobSpec``: its kind, its options as JSON values (the mapping that
passed the strict parser), and its input images as encoded bytes. The data plane validates a request once
(``prepare_*`` in ``plane/slow_jobs.py``, which returns the closure) and hands both to the manager as a
``JobWork``: the in-process manager runs the closure, the shared queue stores the spec, and a worker
rebuilds the closure from it with the same ``prepare_*`` function (``plane/slow_jobs.work_from_spec``).

``JobQueue`` is what the data plane and the transports call; ``JobManager`` and ``RedisJobs`` both
satisfy it, so the transports do not know which one serves them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.core.errors import InvalidArgument
from service.server.jobs.job import Job, JobEvent, JobFunction, JobOutput

SPEC_FIELD = b"spec"  # the JSON part of a stored spec; every other field is one input image


@dataclass(frozen=True)
class JobSpec:
    """A slow job as plain data: ``kind`` (``gatys``, ``deepdream``), ``params`` (JSON values: the
    options mapping, format, quality, backbone) and ``images`` (named lists of encoded image bytes)."""

    kind: str
    params: dict[str, Any]
    images: dict[str, list[bytes]] = field(default_factory=dict)

    def to_fields(self) -> dict[bytes, bytes]:
        """Redis hash fields: the JSON part under ``spec``, each image under ``img:<name>:<index>``."""
        try:
            meta = json.dumps({"kind": self.kind, "params": self.params}, allow_nan=False)
        except (TypeError, ValueError) as exc:  # the parser refuses NaN; anything else is a bug upstream
            raise InvalidArgument(f"The job's options cannot be stored as JSON ({exc}).") from None
        out = {SPEC_FIELD: meta.encode()}
        for name, blobs in self.images.items():
            for i, blob in enumerate(blobs):
                out[f"img:{name}:{i}".encode()] = bytes(blob)
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes]) -> JobSpec:
        meta = json.loads(fields[SPEC_FIELD])
        found: dict[str, dict[int, bytes]] = {}
        for key, value in fields.items():
            if key.startswith(b"img:"):
                _, name, index = key.decode().split(":")
                found.setdefault(name, {})[int(index)] = value
        images = {name: [parts[i] for i in sorted(parts)] for name, parts in found.items()}
        return cls(str(meta["kind"]), dict(meta["params"]), images)

    def image(self, name: str) -> bytes | None:
        blobs = self.images.get(name) or []
        return blobs[0] if blobs else None


@dataclass(frozen=True)
class JobWork:
    """One validated job: the spec (for the shared queue) and the closure built from it (in-process)."""

    spec: JobSpec
    fn: JobFunction


class JobQueue(Protocol):
    """What ``plane.jobs`` offers, in-process (``JobManager``) or on Redis (``RedisJobs``).

    ``submit`` takes a closure and always runs in this process (attack jobs); ``submit_work`` takes a
    ``JobWork`` and runs wherever the manager runs its jobs. ``get``/``cancel`` find only ``owner``'s
    jobs when an owner is given (another key's id reads as unknown).
    """

    def submit(
        self, kind: str, fn: JobFunction, deadline: float | None = None, owner: str | None = None
    ) -> Job: ...

    def submit_work(self, work: JobWork, deadline: float | None = None, owner: str | None = None) -> Job: ...

    def get(self, job_id: str, owner: str | None = None) -> Job: ...

    def cancel(self, job_id: str, reason: str = ..., owner: str | None = None) -> Job: ...

    def result(self, job_id: str, owner: str | None = None) -> JobOutput: ...

    def subscribe(self, job_id: str, owner: str | None = None) -> AsyncIterator[JobEvent]: ...
