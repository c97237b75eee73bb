"""gRPC ``WatchJob`` and ``CancelJob`` on one in-process server: a REST job watched over gRPC to its image
(and watched again once finished), a watcher that goes away leaves the job running, ``CancelJob`` stops it
and its watchers end CANCELLED, unknown ids are NOT_FOUND, and with API keys another key's job is
NOT_FOUND as on REST; the Python client's ``watch_job`` and ``cancel_job`` over the same calls. The shared
queue's side (any replica watches any job) is in test_queue_replicas.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from service.api.v1 import atelier_pb2 as pb
from service.client import AtelierClient, AtelierClientError
from service.core.imageio import encode_image
from service.server.shutdown import calls_in_flight
from tests.grpccalls import code_of
from tests.liveserver import LiveServer, StartServer
from tests.test_auth_server import KEYS, bearer, keys_text
from tests.test_rest_jobs import ENDLESS, QUICK, submit_gatys, wait_state, wait_until


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[bytes, bytes]:
    return encode_image(chelsea[::8, ::8], "jpeg"), encode_image(coffee[::8, ::8], "jpeg")


def ref(job_id: str) -> pb.JobRef:
    return pb.JobRef(job_id=job_id)


def test_watch_job_streams_a_rest_jobs_progress_then_its_image(
    live: LiveServer, images: tuple[bytes, bytes]
) -> None:
    job = submit_gatys(live, images, QUICK).json()
    events = list(live.stub.WatchJob(ref(job["id"]), timeout=60))
    assert {e.job_id for e in events} == {job["id"]}
    steps = [e.progress.step for e in events if e.HasField("progress")]
    assert steps == sorted(steps) and steps[-1] == QUICK["steps"]
    final = events[-1]
    assert final.state == "succeeded" and final.HasField("result")
    assert final.result.image == live.http.get(f"/v1/jobs/{job['id']}/result").content
    assert max(final.result.width, final.result.height) == QUICK["size"] and final.result.duration_s > 0
    # A finished job is watched from its held events again, to the same image.
    again = list(live.stub.WatchJob(ref(job["id"]), timeout=60))
    assert again[-1].result.image == final.result.image


def test_a_watcher_going_away_leaves_the_job_and_cancel_job_stops_it(
    live: LiveServer, images: tuple[bytes, bytes]
) -> None:
    job_id = submit_gatys(live, images, ENDLESS).json()["id"]
    watch = live.stub.WatchJob(ref(job_id), timeout=60)
    next(e for e in watch if e.HasField("progress"))
    watch.cancel()
    # Once the server has ended the watch call (nothing announces it), the job still runs.
    wait_until(lambda: calls_in_flight(live.plane) == 0, 10, "the watch call never ended")
    assert live.http.get(f"/v1/jobs/{job_id}").json()["state"] == "running"

    status = live.stub.CancelJob(ref(job_id), timeout=30)
    assert (status.job_id, status.kind, status.attempts) == (job_id, "gatys", 1)
    assert status.state in ("running", "cancelled")  # running until the worker's next iteration
    code, details = code_of(live.stub.WatchJob, ref(job_id), timeout=60)
    assert code == grpc.StatusCode.CANCELLED and "CancelJob" in details, details
    body = wait_state(live, job_id, {"cancelled"})
    assert body["error"]["reason"] == "cancelled" and "CancelJob" in body["error"]["message"]
    again = live.stub.CancelJob(ref(job_id), timeout=30)  # an ended job: its state, nothing changes
    assert again.state == "cancelled"


@pytest.mark.parametrize("job_id", ["0" * 32, "", "../jobs"])
def test_unknown_job_ids_are_not_found(live: LiveServer, job_id: str) -> None:
    for call in (live.stub.WatchJob, live.stub.CancelJob):
        code, details = code_of(call, ref(job_id), timeout=30)
        assert code == grpc.StatusCode.NOT_FOUND and "No job with id" in details, details


def test_another_keys_job_is_not_found_over_grpc_as_over_rest(
    start_server: StartServer, tmp_path: Path, images: tuple[bytes, bytes]
) -> None:
    keys = tmp_path / "keys"
    keys.write_text(keys_text(list(KEYS)))
    server = start_server(api_keys_file=keys, warmup=False, jobs_per_key=2, job_queue_limit=4)
    content, style = images
    files = [("content", ("c.jpg", content, "image/jpeg")), ("style", ("s.jpg", style, "image/jpeg"))]
    data = {"options": json.dumps(ENDLESS)}
    r = server.http.post("/v1/jobs/gatys", files=files, data=data, headers=bearer(KEYS["alice"]))
    job_id = r.json()["id"]
    alice = [("authorization", f"Bearer {KEYS['alice']}")]
    bob = [("authorization", f"Bearer {KEYS['bob']}")]
    assert server.http.get(f"/v1/jobs/{job_id}", headers=bearer(KEYS["bob"])).status_code == 404
    for call in (server.stub.WatchJob, server.stub.CancelJob):
        assert code_of(call, ref(job_id), timeout=30, metadata=bob)[0] == grpc.StatusCode.NOT_FOUND
        assert code_of(call, ref(job_id), timeout=30)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert server.http.get(f"/v1/jobs/{job_id}", headers=bearer(KEYS["alice"])).json()["state"] != "cancelled"
    assert server.stub.CancelJob(ref(job_id), timeout=30, metadata=alice).job_id == job_id
    code, _ = code_of(server.stub.WatchJob, ref(job_id), timeout=60, metadata=alice)
    assert code == grpc.StatusCode.CANCELLED


# --- the Python client: watch_job and cancel_job -------------------------------------------------------
def test_the_client_watches_a_job_to_its_image_and_cancels_one(
    live: LiveServer, images: tuple[bytes, bytes]
) -> None:
    quick = submit_gatys(live, images, QUICK).json()["id"]
    with AtelierClient(live.grpc_target) as client:
        updates = list(client.watch_job(quick, timeout=60))
        assert {u.job_id for u in updates} == {quick}
        assert [u.step for u in updates if u.total][-1] == QUICK["steps"]
        final = updates[-1]
        assert final.done and final.state == "succeeded" and all(not u.done for u in updates[:-1])
        assert final.image == live.http.get(f"/v1/jobs/{quick}/result").content
        assert final.content_type == "image/png" and max(final.width, final.height) == QUICK["size"]

        endless = submit_gatys(live, images, ENDLESS).json()["id"]
        watch = iter(client.watch_job(endless, timeout=60))
        next(u for u in watch if u.step > 0)  # running
        status = client.cancel_job(endless)
        assert (status.job_id, status.kind, status.attempts) == (endless, "gatys", 1)
        assert status.state in ("running", "cancelled")  # running until the worker's next iteration
        with pytest.raises(AtelierClientError) as info:
            list(watch)  # the watched job's end is the stream's status: the cancel, with its reason
        assert info.value.code == grpc.StatusCode.CANCELLED and "CancelJob" in info.value.message
        assert client.cancel_job(endless).state == "cancelled"  # an ended job keeps its state


def test_the_client_reports_unknown_jobs_as_client_errors(live: LiveServer) -> None:
    with AtelierClient(live.grpc_target) as client:
        for call in (
            lambda: list(client.watch_job("0" * 32, timeout=30)),
            lambda: client.cancel_job("0" * 32),
        ):
            with pytest.raises(AtelierClientError) as info:
                call()
            assert info.value.code == grpc.StatusCode.NOT_FOUND and "No job with id" in info.value.message
