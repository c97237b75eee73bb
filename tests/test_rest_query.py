"""REST query parameters a route does not declare are refused (400, listing the known names) instead of
silently ignored: ``strenght=0.5`` used to render at strength 1."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.liveserver import LiveServer

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="module")
def photo(chelsea: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(chelsea).resize((64, 48)).save(buf, "JPEG")
    return buf.getvalue()


def test_unknown_query_parameters_are_refused(live: LiveServer, photo: bytes) -> None:
    r = live.http.post(
        "/v1/stylize", params={"style": "starry_night", "strenght": "0.5"}, content=photo, headers=JPEG
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["reason"] == "invalid_argument"
    assert "'strenght'" in error["message"] and "strength" in error["message"]
    assert "preserve_color" in error["message"]  # the known names are listed
    # The same, generically, on other routes; a route with no query parameters says so.
    r = live.http.post("/v1/classify", params={"topk": "3"}, content=photo, headers=JPEG)
    assert r.status_code == 400 and "'topk'" in r.text and "top_k" in r.text, r.text
    r = live.http.get("/v1/styles", params={"verbose": "1"})
    assert r.status_code == 400 and "Known: none" in r.text, r.text
    many = {f"x{i}": "1" for i in range(20)}
    r = live.http.get("/v1/styles", params=many)
    assert r.status_code == 400 and "and 15 more" in r.text, r.text
    # Declared parameters still work, and the refusal is counted as the route's call with its status.
    ok = live.http.post(
        "/v1/stylize", params={"style": "starry_night", "strength": "0.5"}, content=photo, headers=JPEG
    )
    assert ok.status_code == 200, ok.text
    metrics = live.http.get("/metrics").text
    assert 'atelier_errors_total{method="Stylize",reason="invalid_argument",transport="rest"}' in metrics
