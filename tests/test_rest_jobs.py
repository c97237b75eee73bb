"""Slow renders as REST jobs against a real server: submit, progress over Server-Sent Events, status,
result, cancel, a full queue (429) and result expiry. The shared ``live`` server's one job worker and one
queue slot make each of those reachable with tiny renders; the expiry test has a server of its own with a
short result time-to-live."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
import pytest

from service.core.errors import Cancelled, DeadlineExceeded, InvalidArgument
from service.core.imageio import decode_image, encode_image
from service.server.errors import status_for
from service.server.transport.rest import sse
from tests.liveserver import LiveServer, StartServer
from tests.test_rest_api import error_of

TTL_S = 2.0  # result time-to-live of the expiry test's own server
QUICK = {"size": 48, "steps": 3}
ENDLESS = {"size": 48, "steps": 10_000}  # the most steps allowed: runs until cancelled


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[bytes, bytes]:
    return encode_image(chelsea[::8, ::8], "jpeg"), encode_image(coffee[::8, ::8], "jpeg")


def submit_gatys(
    live: LiveServer, images: tuple[bytes, bytes], options: dict[str, Any], **params: Any
) -> httpx.Response:
    content, style = images
    files = [
        ("content", ("content.jpg", content, "image/jpeg")),
        ("style", ("style.jpg", style, "image/jpeg")),
    ]
    return live.http.post("/v1/jobs/gatys", params=params, files=files, data={"options": json.dumps(options)})


def wait_state(live: LiveServer, job_id: str, states: set[str]) -> dict[str, Any]:
    """Follow the job's event stream until it reports one of ``states``; then its status document.

    The stream pushes every state change and ends after the terminal one, so this waits on the job
    itself instead of polling its status.
    """
    with live.http.stream("GET", f"/v1/jobs/{job_id}/events") as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data:") and json.loads(line[5:])["state"] in states:
                break
        else:
            raise AssertionError(f"job {job_id} finished without reaching {states}")
    body: dict[str, Any] = live.http.get(f"/v1/jobs/{job_id}").json()
    return body


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds: only for conditions nothing announces (a result's TTL running out,
    the server noticing a client that hung up)."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def read_events(live: LiveServer, url: str) -> list[dict[str, Any]]:
    """The whole SSE stream as a list of {event, id, data} (the stream ends after ``done``)."""
    events, current = [], {}
    with live.http.stream("GET", url) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith(sse.MEDIA_TYPE)
        for line in r.iter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                current = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                current[key] = json.loads(value) if key == "data" else value.strip()
    return events


def test_gatys_job_life(live: LiveServer, images: tuple[bytes, bytes]) -> None:
    r = submit_gatys(live, images, {**QUICK, "preview_every": 1}, format="png")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "gatys" and job["state"] in {"queued", "running"}
    assert r.headers["location"] == job["urls"]["status"] == f"/v1/jobs/{job['id']}"

    events = read_events(live, job["urls"]["events"])
    assert [e["event"] for e in events[:-1]] == ["progress"] * (len(events) - 1) and events[-1][
        "event"
    ] == "done"
    steps = [e["data"]["progress"]["step"] for e in events if "progress" in e["data"]]
    assert steps == sorted(steps) and steps[-1] == QUICK["steps"]
    assert any(e["data"].get("preview", "").startswith("data:image/jpeg;base64,") for e in events)
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    done = events[-1]["data"]
    assert done["state"] == "succeeded" and set(done["progress"]["losses"]) >= {"content", "style"}

    status = live.http.get(job["urls"]["status"]).json()
    assert status["state"] == "succeeded" and status["timings"]["running"] > 0
    assert status["timings"]["total"] >= status["timings"]["queued"] + status["timings"]["running"] - 1e-3
    result = live.http.get(job["urls"]["result"])
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    image = decode_image(result.content)
    assert image.shape == (status["result"]["height"], status["result"]["width"], 3)
    assert max(image.shape[:2]) == QUICK["size"] and len(result.content) == status["result"]["bytes"]


def test_deepdream_job_from_a_raw_body(live: LiveServer, images: tuple[bytes, bytes]) -> None:
    options = json.dumps({"octaves": 1, "steps": 2})
    r = live.http.post(
        "/v1/jobs/deepdream",
        params={"options": options, "format": "jpeg"},
        content=images[0],
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 202, r.text
    status = wait_state(live, r.json()["id"], {"succeeded", "failed"})
    assert status["state"] == "succeeded", status
    result = live.http.get(status["urls"]["result"])
    assert result.headers["content-type"] == "image/jpeg"
    assert decode_image(result.content).shape == decode_image(images[0]).shape


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"size": 48, "scales": [32, 48], "scale_steps": [1]}, "step count per scale"),
        ({"size": 48, "style_taps": ["no_such_tap"]}, "no_such_tap"),
    ],
    ids=["schedule", "tap"],
)
def test_gatys_options_only_the_algorithm_checks_are_refused_up_front(
    live: LiveServer, images: tuple[bytes, bytes], options: dict[str, Any], words: str
) -> None:
    # Well-typed options that only the render's own planning rejects: refused with 400 at submission,
    # not accepted as a job that then fails.
    r = submit_gatys(live, images, options)
    assert r.status_code == 400, r.text
    assert error_of(r)["reason"] == "invalid_argument" and words in error_of(r)["message"]


def test_deepdream_channel_out_of_range_is_refused_up_front(
    live: LiveServer, images: tuple[bytes, bytes]
) -> None:
    r = live.http.post(
        "/v1/jobs/deepdream",
        params={"options": json.dumps({"octaves": 1, "steps": 2, "channel": 100_000})},
        content=images[0],
        headers={"Content-Type": "image/jpeg"},
    )
    assert r.status_code == 400, r.text
    assert "channel 100000 is out of range" in error_of(r)["message"]


def test_cancel_a_running_job(live: LiveServer, images: tuple[bytes, bytes]) -> None:
    job = submit_gatys(live, images, ENDLESS).json()
    wait_state(live, job["id"], {"running"})
    early = live.http.get(job["urls"]["result"])
    assert (
        early.status_code == 503 and early.headers["retry-after"] and error_of(early)["reason"] == "not_ready"
    )
    r = live.http.delete(job["urls"]["status"])
    assert r.status_code == 200 and r.json()["id"] == job["id"]
    events = read_events(live, job["urls"]["events"])  # ends once the worker has stopped
    assert events[-1]["event"] == "done" and events[-1]["data"]["state"] == "cancelled"
    assert events[-1]["data"]["error"]["reason"] == "cancelled"
    result = live.http.get(job["urls"]["result"])
    assert result.status_code == status_for(Cancelled("")).http and error_of(result)["reason"] == "cancelled"
    # The worker is free again.
    quick = submit_gatys(live, images, QUICK).json()
    assert wait_state(live, quick["id"], {"succeeded", "failed"})["state"] == "succeeded"


def test_429_when_the_job_queue_is_full(live: LiveServer, images: tuple[bytes, bytes]) -> None:
    running = submit_gatys(live, images, ENDLESS).json()
    wait_state(live, running["id"], {"running"})
    queued = submit_gatys(live, images, ENDLESS).json()
    assert queued["state"] == "queued"
    try:
        refused = submit_gatys(live, images, QUICK)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert error_of(refused)["reason"] == "resource_exhausted"
    finally:
        cancelled = live.http.delete(queued["urls"]["status"]).json()
        assert cancelled["state"] == "cancelled"  # a queued job is cancelled at once
        live.http.delete(running["urls"]["status"])
        wait_state(live, running["id"], {"cancelled"})


def test_finished_results_expire(start_server: StartServer, images: tuple[bytes, bytes]) -> None:
    live = start_server(warmup=False, job_result_ttl_s=TTL_S)
    job = submit_gatys(live, images, QUICK).json()
    wait_state(live, job["id"], {"succeeded"})
    assert live.http.get(job["urls"]["result"]).status_code == 200
    wait_until(
        lambda: live.http.get(job["urls"]["status"]).status_code != 200,
        TTL_S + 10,
        "the result never expired",
    )
    r = live.http.get(job["urls"]["status"])
    assert r.status_code == 404 and "expired" in error_of(r)["message"]
    assert live.http.get(job["urls"]["result"]).status_code == 404


@pytest.mark.parametrize(
    "form,status,needle",
    [
        ({"content": True, "style": False, "options": "{}"}, 400, "field 'style'"),
        ({"content": False, "style": True, "options": "{}"}, 400, "field 'content'"),
        ({"content": True, "style": True, "options": "[1, 2]"}, None, "JSON object"),
        ({"content": True, "style": True, "options": '{"stepz": 3}'}, None, "Unknown option 'stepz'"),
        ({"content": True, "style": True, "options": '{"steps": "many"}'}, None, "integer"),
        ({"content": True, "style": True, "options": "{}", "quality": "high"}, None, "quality"),
    ],
    ids=["no-style", "no-content", "options-list", "unknown-option", "option-type", "quality"],
)
def test_bad_job_requests(
    live: LiveServer, images: tuple[bytes, bytes], form: dict[str, Any], status: int | None, needle: str
) -> None:
    files = [(name, (f"{name}.jpg", images[0], "image/jpeg")) for name in ("content", "style") if form[name]]
    data = {k: v for k, v in form.items() if k not in ("content", "style")}
    r = live.http.post("/v1/jobs/gatys", files=files, data=data)
    assert r.status_code == (status or status_for(InvalidArgument("")).http), r.text
    assert needle in error_of(r)["message"]


# --- SSE framing ---------------------------------------------------------------------------------------
def test_sse_format() -> None:
    block = sse.format_event({"state": "running", "text": "a\nb"}, "progress", 7)
    assert block == b'id: 7\nevent: progress\ndata: {"state":"running","text":"a\\nb"}\n\n'


def test_sse_keepalive_keeps_every_item() -> None:
    async def slow() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0.05)
            yield i

    async def collect() -> list[int | None]:
        return [item async for item in sse.with_keepalive(slow(), keepalive_s=0.01)]

    out = asyncio.run(collect())
    assert [x for x in out if x is not None] == [0, 1, 2]
    assert None in out  # keep-alives were sent while waiting


def test_timeout_caps_a_job(live: LiveServer, images: tuple[bytes, bytes]) -> None:
    job = submit_gatys(live, images, ENDLESS, timeout_s=0.5).json()
    status = wait_state(live, job["id"], {"deadline_exceeded", "succeeded", "failed", "cancelled"})
    assert status["state"] == "deadline_exceeded" and status["error"]["reason"] == "deadline_exceeded"
    result = live.http.get(job["urls"]["result"])
    assert result.status_code == status_for(DeadlineExceeded("")).http  # 504
    bad = submit_gatys(live, images, QUICK, timeout_s=0)
    assert bad.status_code == status_for(InvalidArgument("")).http and "timeout_s" in error_of(bad)["message"]


def test_leaving_an_event_stream_keeps_the_job(live: LiveServer, images: tuple[bytes, bytes]) -> None:
    """A REST job outlives its watchers: closing the SSE connection neither cancels nor breaks it."""
    job = submit_gatys(live, images, ENDLESS).json()
    with live.http.stream("GET", job["urls"]["events"]) as r:
        for line in r.iter_lines():
            if line.startswith("event: progress"):
                break  # hang up after the first event
    try:
        assert live.http.get(job["urls"]["status"]).json()["state"] == "running"
        # The server let go of the subscription (no waiter left behind for the gone client).
        server_job = live.plane.jobs.get(job["id"])
        wait_until(lambda: not server_job._waiters, 10, "the server kept the gone client's subscription")
        assert not server_job._waiters
        assert live.http.get(job["urls"]["status"]).json()["state"] == "running"
    finally:
        live.http.delete(job["urls"]["status"])
        assert wait_state(live, job["id"], {"cancelled"})["state"] == "cancelled"
