"""REST: /v1/embed, galleries (bounded, a member finds itself first), the attack job, hostile images."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone
from service.core.imageio import decode_image, encode_image
from service.core.labels import resolve_class
from service.core.tensors import image_to_tensor
from tests.liveserver import LiveServer, StartServer
from tests.test_imageio import bomb_png
from tests.test_rest_jobs import wait_state


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    from skimage import data

    return {
        name: encode_image(np.asarray(getattr(data, name)())[::3, ::3].copy(), "png")
        for name in ("chelsea", "coffee", "astronaut", "rocket")
    }


def _files(images: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (f"{i}.png", b, "image/png")) for i, b in enumerate(images)]


def test_embed_one_and_several(live: LiveServer, photos: dict[str, bytes]) -> None:
    one = live.http.post("/v1/embed", content=photos["chelsea"], headers={"content-type": "image/png"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["backbone"] == "efficientnet_lite0" and body["tap"] == "pool" and body["dimension"] == 1280
    assert len(body["embeddings"]) == 1 and len(body["embeddings"][0]["vector"]) == 1280
    assert "cat" in body["embeddings"][0]["prediction"]["label"]
    several = live.http.post("/v1/embed", params={"normalize": "true"}, files=_files(list(photos.values())))
    rows = several.json()["embeddings"]
    assert several.status_code == 200 and len(rows) == 4 and several.json()["normalized"]
    np.testing.assert_allclose(np.linalg.norm([r["vector"] for r in rows], axis=1), 1.0, rtol=1e-4)
    # the same image gives the same direction alone and in a batch of four
    solo = np.asarray(body["embeddings"][0]["vector"])
    np.testing.assert_allclose(solo / np.linalg.norm(solo), rows[0]["vector"], atol=1e-5)


def test_gallery_member_finds_itself_first(live: LiveServer, photos: dict[str, bytes]) -> None:
    names = list(photos)
    r = live.http.post(
        "/v1/galleries/skimage", files=_files(list(photos.values())), data={"names": json.dumps(names)}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "skimage", "backbone": "efficientnet_lite0", "size": 4, "added": 4}
    hit = live.http.post(
        "/v1/galleries/skimage/search",
        params={"k": 3},
        content=photos["coffee"],
        headers={"content-type": "image/png"},
    )
    assert hit.status_code == 200, hit.text
    neighbours = hit.json()["neighbours"]
    assert neighbours[0]["name"] == "coffee" and neighbours[0]["distance"] < 1e-4 and len(neighbours) == 3
    listed = live.http.get("/v1/galleries").json()["galleries"]
    assert {"name": "skimage", "backbone": "efficientnet_lite0", "size": 4} in listed
    missing = live.http.post(
        "/v1/galleries/nope/search", content=photos["coffee"], headers={"content-type": "image/png"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["reason"] == "not_found"
    bad = live.http.post("/v1/galleries/..%2Fx", files=_files([photos["coffee"]]))
    assert bad.status_code in (400, 404)


def test_galleries_are_bounded(start_server: StartServer, photos: dict[str, bytes]) -> None:
    server = start_server(max_galleries=1, max_gallery_items=2, max_embed_images=3, warmup=False)
    images = list(photos.values())
    assert server.http.post("/v1/galleries/a", files=_files(images[:2])).status_code == 200
    full = server.http.post("/v1/galleries/a", files=_files(images[2:3]))
    assert full.status_code == 429 and "at most 2 images" in full.json()["error"]["message"]
    other = server.http.post("/v1/galleries/b", files=_files(images[:1]))
    assert other.status_code == 429 and "at most 1 galleries" in other.json()["error"]["message"]
    too_many = server.http.post("/v1/embed", files=_files(images))
    assert too_many.status_code in (400, 413) and too_many.json()["error"]["reason"] in {
        "invalid_argument",
        "invalid_image",
    }


def test_attack_job_reaches_its_target(live: LiveServer, photos: dict[str, bytes], lite0: Backbone) -> None:
    options: dict[str, Any] = {"eps": 8, "steps": 10}
    r = live.http.post(
        "/v1/jobs/attack",
        params={"method": "pgd", "target": "ipod", "options": json.dumps(options)},
        content=photos["chelsea"],
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 202, r.text
    job = wait_state(live, r.json()["id"], {"succeeded", "failed", "cancelled"})
    assert job["kind"] == "attack" and job["state"] == "succeeded", job
    result = live.http.get(job["urls"]["result"])
    assert result.headers["content-type"] == "image/png"
    # The stored PNG is the 224 px crop the classifier saw and, fed to it as is, reads as an iPod.
    # (/v1/classify would resize it to 256 and crop again, which smooths most of the perturbation away.)
    adversarial = decode_image(result.content)
    assert adversarial.shape == (224, 224, 3)
    with torch.no_grad():
        assert int(lite0(image_to_tensor(adversarial)).argmax()) == resolve_class("ipod")


@pytest.mark.parametrize(
    "query, options",
    [
        ({"method": "deepfool"}, None),
        ({"target": "no such class"}, None),
        ({}, {"eps": 1000}),
        ({}, {"size": 64}),
    ],
)
def test_bad_attacks_are_refused_up_front(
    live: LiveServer, photos: dict[str, bytes], query: dict[str, str], options: dict[str, Any] | None
) -> None:
    params = {**query, **({"options": json.dumps(options)} if options else {})}
    r = live.http.post(
        "/v1/jobs/attack", params=params, content=photos["coffee"], headers={"content-type": "image/png"}
    )
    assert r.status_code == 400, r.text


HOSTILE = {
    "bomb": (bomb_png(), 413),
    "truncated": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 400),
    "not an image": (b"GIF89a" + b"\x00" * 40, 400),
    "svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 400),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize(
    "path", ["/v1/embed", "/v1/galleries/hostile", "/v1/galleries/skimage/search", "/v1/jobs/attack"]
)
def test_hostile_images_are_refused(live: LiveServer, kind: str, path: str) -> None:
    data, status = HOSTILE[kind]
    r = live.http.post(path, files=_files([data]))
    assert r.status_code == status, r.text
    assert r.json()["error"]["reason"] in {"invalid_image", "image_too_large"}
