"""REST: /v1/embed, galleries (bounded, a member finds itself first), the attack job, hostile images."""

from __future__ import annotations

import json
from pathlib import Path
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


# --- fooling images need no image; FGSM and PGD do ---------------------------------------------------------
def test_fooling_job_takes_no_image(live: LiveServer) -> None:
    r = live.http.post(
        "/v1/jobs/attack",
        params={"method": "fooling", "target": "goldfish", "options": json.dumps({"steps": 3})},
    )
    assert r.status_code == 202, r.text
    job = wait_state(live, r.json()["id"], {"succeeded", "failed", "cancelled"})
    assert job["state"] == "succeeded", job
    result = live.http.get(job["urls"]["result"])
    assert result.headers["content-type"] == "image/png"
    assert decode_image(result.content).shape == (224, 224, 3)


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
@pytest.mark.parametrize("how", ["no body", "form without image"])
def test_fgsm_and_pgd_without_an_image_are_refused(live: LiveServer, method: str, how: str) -> None:
    params = {"method": method, "target": "ipod"}
    if how == "no body":
        r = live.http.post("/v1/jobs/attack", params=params)
    else:
        r = live.http.post("/v1/jobs/attack", params=params, files={"other": ("x.txt", b"x", "text/plain")})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["reason"] == "invalid_image" and f"The {method} attack needs an image" in error["message"]


# --- cancelling an attack over REST ------------------------------------------------------------------------
def test_cancel_a_running_attack_frees_the_worker(live: LiveServer, photos: dict[str, bytes]) -> None:
    # The most PGD steps and no early stop: it runs until cancelled.
    endless = {"steps": 1000, "early_stop": False}
    r = live.http.post(
        "/v1/jobs/attack",
        params={"method": "pgd", "options": json.dumps(endless)},
        content=photos["coffee"],
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    wait_state(live, job["id"], {"running"})
    cancel = live.http.delete(job["urls"]["status"])
    assert cancel.status_code == 200 and cancel.json()["id"] == job["id"]
    assert wait_state(live, job["id"], {"succeeded", "failed", "cancelled"})["state"] == "cancelled"
    # The only worker is free again: a one-step FGSM attack runs to its result.
    quick = live.http.post(
        "/v1/jobs/attack",
        params={"method": "fgsm", "options": json.dumps({"eps": 2})},
        content=photos["coffee"],
        headers={"content-type": "image/png"},
    )
    assert quick.status_code == 202, quick.text
    assert wait_state(live, quick.json()["id"], {"succeeded", "failed", "cancelled"})["state"] == "succeeded"


# --- VGG pooling on the render jobs ------------------------------------------------------------------------
def submit_render(
    server: LiveServer, photos: dict[str, bytes], route: str, options: dict[str, Any], backbone: str = ""
) -> Any:
    """POST a Gatys or DeepDream job with ``options`` (a JSON form field) on ``backbone``."""
    params = {"backbone": backbone} if backbone else {}
    files = (
        [
            ("content", ("c.png", photos["chelsea"], "image/png")),
            ("style", ("s.png", photos["coffee"], "image/png")),
        ]
        if route == "gatys"
        else [("image", ("i.png", photos["chelsea"], "image/png"))]
    )
    return server.http.post(
        f"/v1/jobs/{route}", params=params, files=files, data={"options": json.dumps(options)}
    )


@pytest.mark.parametrize("route", ["gatys", "deepdream"])
@pytest.mark.parametrize(
    "pooling, says",
    [
        ("avg", "applies to the VGG backbones only, not efficientnet_lite0"),
        ("mean", "Unknown pooling 'mean'; use one of max, avg"),
        (2, "Option 'pooling' must be a string"),
    ],
)
def test_pooling_is_checked_before_a_job_exists(
    live: LiveServer, photos: dict[str, bytes], route: str, pooling: Any, says: str
) -> None:
    r = submit_render(live, photos, route, {"pooling": pooling, "steps": 1})  # Lite0: the default backbone
    assert r.status_code == 400, r.text
    assert r.json()["error"]["reason"] == "invalid_argument" and says in r.json()["error"]["message"]


def test_vgg_pooling_without_weights_is_the_weights_error(
    start_server: StartServer, photos: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.core.backbones as backbones

    asked: list[tuple[str, str]] = []
    real = backbones.get_backbone

    def spy(name: str, device: Any = "cpu", weights: Any = None, pooling: str = "max") -> Backbone:
        asked.append((name, pooling))
        return real(name, device, weights, pooling=pooling)

    monkeypatch.setattr(backbones, "get_backbone", spy)
    server = start_server(vgg16_weights=tmp_path / "vgg16-397923af.pth", warmup=False)
    for route in ("gatys", "deepdream"):
        for pooling in ("avg", "max"):
            r = submit_render(server, photos, route, {"pooling": pooling, "steps": 1}, backbone="vgg16")
            assert r.status_code == 424, r.text
            error = r.json()["error"]
            assert error["reason"] == "weights_not_found" and "vgg16-397923af.pth" in error["message"]
        bad = submit_render(server, photos, route, {"pooling": "mean"}, backbone="vgg16")
        assert bad.status_code == 400 and "Unknown pooling" in bad.json()["error"]["message"], bad.text
    # The parsed option reached the backbone: VGG was asked for with average pools, then max.
    assert [a for a in asked if a[0] == "vgg16"] == [("vgg16", "avg"), ("vgg16", "max")] * 2
