"""Renders and saliency on separate worker pools (service/server/jobs/pools.py): a full render pool
(every worker busy, every queue slot taken) refuses the next render with 429 but never a saliency call,
and each pool's queue has its own metric series. Uses the shared ``live`` server (one render worker, one
queue slot) and cancels its renders before it returns."""

from __future__ import annotations

import re

import numpy as np
import pytest

from service.core.imageio import encode_image
from service.settings import Settings
from tests.liveserver import LiveServer
from tests.test_rest_jobs import ENDLESS, submit_gatys, wait_state


@pytest.fixture(scope="module")
def images(chelsea: np.ndarray, coffee: np.ndarray) -> tuple[bytes, bytes]:
    return encode_image(chelsea[::8, ::8], "jpeg"), encode_image(coffee[::8, ::8], "jpeg")


def _sample(text: str, series: str) -> float:
    m = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert m, f"{series} is not exported"
    return float(m.group(1))


def test_saliency_succeeds_while_the_render_pool_is_full(
    live: LiveServer, images: tuple[bytes, bytes]
) -> None:
    settings = live.settings
    held = settings.job_workers + settings.job_queue_limit
    ids = []
    try:
        for _ in range(held):
            r = submit_gatys(live, images, ENDLESS)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        wait_state(live, ids[0], {"running"})
        full = submit_gatys(live, images, ENDLESS)
        assert full.status_code == 429 and full.json()["error"]["reason"] == "resource_exhausted"

        r = live.http.post(
            "/v1/saliency",
            params={"method": "gradient", "output": "json"},
            content=images[0],
            headers={"content-type": "image/jpeg"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-atelier-method"] == "gradient"

        metrics = live.http.get("/metrics").text
        assert _sample(metrics, 'atelier_queue_depth{queue="jobs"}') == settings.job_queue_limit
        assert _sample(metrics, 'atelier_queue_depth{queue="saliency"}') == 0
        assert _sample(metrics, 'atelier_rejected_total{queue="jobs"}') >= 1
        assert _sample(metrics, 'atelier_rejected_total{queue="saliency"}') == 0
    finally:
        for job_id in ids:
            live.http.delete(f"/v1/jobs/{job_id}")
        for job_id in ids:
            wait_state(live, job_id, {"cancelled"})


def test_pool_sizes_have_their_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_SALIENCY_WORKERS", "3")
    monkeypatch.setenv("ATELIER_SALIENCY_QUEUE_LIMIT", "5")
    monkeypatch.setenv("ATELIER_JOB_WORKERS", "2")  # the render pool keeps the old names
    s = Settings(_env_file=None)
    assert (s.saliency_workers, s.saliency_queue_limit, s.job_workers) == (3, 5, 2)
