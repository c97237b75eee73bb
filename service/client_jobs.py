"""Client calls for jobs by id, ``WatchJob`` and ``CancelJob``: a mixin of ``service.client.AtelierClient``.

    with AtelierClient("localhost:50051") as client:
        for update in client.watch_job(job_id):     # any job: a REST job's id, a stream's job_id
            print(update.state, update.step, update.total)
        update.save("render.png")                    # the last update carries the image
        print(client.cancel_job(other_id).state)     # "running" until the worker's next step

A watch replays the events the job still holds, then follows it live; with the shared queue any replica
watches any replica's job. Ending a watch (``cancel()`` on the stream, or leaving the loop) never
cancels the job; ``cancel_job`` does. A job that failed, was cancelled or is unknown raises
``AtelierClientError`` with the server's status code and message, as the render streams do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.api.v1 import atelier_pb2 as pb

if TYPE_CHECKING:
    from service.api.v1 import atelier_pb2_grpc as pb_grpc
    from service.client import RenderStream


@dataclass(frozen=True)
class JobStatus:
    """``CancelJob``'s answer: ``state`` is ``running`` until the job's next iteration, then
    ``cancelled``; a job that had already ended keeps its state. ``attempts``: starts of its work."""

    job_id: str
    kind: str
    state: str
    attempts: int


class JobCalls:
    """WatchJob and CancelJob; ``AtelierClient`` supplies the stub, metadata and error mapping."""

    if TYPE_CHECKING:  # provided by AtelierClient
        stub: pb_grpc.AtelierStub
        metadata: tuple[tuple[str, str], ...]

        def _unary(self, method: Any, request: Any, timeout: float | None) -> Any: ...

        def _render_stream(self, call: Any) -> RenderStream: ...

    def watch_job(self, job_id: str, timeout: float | None = None) -> RenderStream:
        """Follow job ``job_id``; iterate for progress, the last update holds the image (and an
        attack's ``attack`` outcome). ``timeout``: for the whole watch (None: as long as the job runs)."""
        call = self.stub.WatchJob(pb.JobRef(job_id=job_id), timeout=timeout, metadata=self.metadata)
        return self._render_stream(call)

    def cancel_job(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Cancel job ``job_id``: a queued job at once, a running one within one iteration."""
        reply = self._unary(self.stub.CancelJob, pb.JobRef(job_id=job_id), timeout)
        return JobStatus(reply.job_id, reply.kind, reply.state, reply.attempts)
