"""The gRPC side of jobs by id, ``WatchJob`` and ``CancelJob``, and the event relay that every job stream
(``Gatys``, ``DeepDream``, ``Attack``, ``WatchJob``) shares.

A mixin of ``AtelierServicer`` (kept out of servicer.py for size). ``WatchJob`` and ``CancelJob`` are REST's
``GET /v1/jobs/{id}/events`` and ``DELETE /v1/jobs/{id}`` over gRPC: the same ``plane.jobs`` (in-process, or
the shared queue, where any replica watches or cancels any replica's job), the same owner rule (another
key's job reads as unknown: NOT_FOUND) and the one error table. A job's stream is the same messages
whichever call sends it: ``RenderEvent`` progress, then the result event, or the job's error as the status.

Who cancels a job when its stream ends early: the stream that created it does (the render lives as long
as its call: a client gone or a deadline passed frees the worker); a watcher never does. A draining
replica (SIGTERM) cancels its in-process jobs as before (``JobPools.drain``), but a shared-queue job
belongs to the workers and outlives the replica: its streams here end at once with UNAVAILABLE
(``ShuttingDown``) naming the job id to watch on another replica, and the job is not cancelled
(``jobs/streams.py``; REST's SSE streams end the same way, with a last ``shutting_down`` event).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import grpc

from service.api.v1 import atelier_pb2 as pb
from service.server.jobs.job import Job, JobEvent, JobState
from service.server.jobs.streams import handed_over, until_set
from service.server.jobs.work import queue_call, queue_call_soon
from service.server.transport.grpc.features import attack_outcome

if TYPE_CHECKING:
    from service.server.plane.dataplane import DataPlane, RequestScope

CLIENT_GONE = "the client went away"
CANCEL_REASON = "cancelled by the client (CancelJob)"


class JobRpcs:
    """WatchJob, CancelJob and the job relay; mixed into ``AtelierServicer``, which supplies the rest."""

    if TYPE_CHECKING:  # provided by AtelierServicer
        plane: DataPlane

        def _rpc(
            self, context: grpc.aio.ServicerContext, method: str, model: str = ""
        ) -> AbstractAsyncContextManager[RequestScope]: ...

    async def WatchJob(
        self, request: pb.JobRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RenderEvent]:
        async with self._rpc(context, "WatchJob") as scope:
            jobs = self.plane.jobs
            job = await queue_call(jobs, jobs.get, request.job_id, scope.owner)
            async for event in self._relay(job):
                yield event

    async def CancelJob(self, request: pb.JobRef, context: grpc.aio.ServicerContext) -> pb.JobStatus:
        async with self._rpc(context, "CancelJob") as scope:
            jobs = self.plane.jobs
            job = await queue_call(jobs, jobs.cancel, request.job_id, CANCEL_REASON, scope.owner)
        return pb.JobStatus(job_id=job.id, kind=job.kind, state=job.state, attempts=job.attempts)

    async def _stream(self, job: Job) -> AsyncIterator[pb.RenderEvent]:
        """Relay the events of the job this call created, and cancel the job if the stream ends early
        (client gone, deadline); but a draining replica leaves a shared job to the workers."""
        try:
            async for event in self._relay(job):
                yield event
        finally:
            if not job.latest.terminal and not (job.shared and self.plane.drain_started.is_set()):
                queue_call_soon(self.plane.jobs, self.plane.jobs.cancel, job.id, CLIENT_GONE)

    async def _relay(self, job: Job) -> AsyncIterator[pb.RenderEvent]:
        """The job's events as ``RenderEvent``s from the oldest one held; a failed, cancelled or expired
        job raises its error (the call's status). Cancels nothing."""
        events = job.events()
        if job.shared:
            events = until_set(events, self.plane.drain_started, lambda: handed_over(job.id))
        async for event in events:
            if event.state is JobState.SUCCEEDED:
                message = result_event(event)
                if job.kind == "attack" and event.output is not None:
                    message.result.attack.CopyFrom(attack_outcome(event.output.extra))
                yield message
            elif event.terminal:
                assert event.error is not None
                raise event.error
            else:
                yield progress_event(event)


def progress_event(event: JobEvent) -> pb.RenderEvent:
    msg = pb.RenderEvent(job_id=event.job_id, state=event.state)
    p = event.progress
    if p is not None:
        msg.progress.CopyFrom(
            pb.RenderProgress(
                step=p.step,
                total=p.total,
                losses={k: float(v) for k, v in p.losses.items()},
                elapsed_s=p.elapsed_s,
                eta_s=p.eta_s,
                stage=p.stage,
                preview=event.preview_jpeg or b"",
            )
        )
    return msg


def result_event(event: JobEvent) -> pb.RenderEvent:
    out = event.output
    assert out is not None
    result = pb.RenderResult(
        image=out.data,
        content_type=out.content_type,
        width=out.width,
        height=out.height,
        duration_s=event.duration_s or 0.0,
    )
    return pb.RenderEvent(job_id=event.job_id, state=event.state, result=result)
