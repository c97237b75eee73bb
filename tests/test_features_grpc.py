"""gRPC: Embed (deterministic, the same vector as REST), galleries shared with REST (a member finds itself
first, limits refused clearly), the Attack stream (reaches its target, ends with the result, cancel frees
the worker), fooling images, and hostile images refused with INVALID_ARGUMENT on every new RPC.

Most calls go through ``service.client.AtelierClient`` (so its new methods are tested with them); the raw
stub is used where the status code itself is the point. Waits are on stream events and job flags."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import torch

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.client import AtelierClient, AtelierClientError
from service.core.backbones import Backbone
from service.core.imageio import decode_image, encode_image
from service.core.labels import resolve_class
from service.core.tensors import image_to_tensor
from tests.liveserver import LiveServer, StartServer
from tests.test_features_rest import HOSTILE

C = grpc.StatusCode


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    from skimage import data

    return {
        name: encode_image(np.asarray(getattr(data, name)())[::3, ::3].copy(), "png")
        for name in ("chelsea", "coffee", "astronaut", "rocket")
    }


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[AtelierClient]:
    with AtelierClient(live.grpc_target, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def stub(live: LiveServer) -> pb_grpc.AtelierStub:
    return live.stub


def status_of(call: Callable[[], Any]) -> tuple[C, str]:
    """The status of a failing client call (a stream is read to its end, where its error arrives)."""
    with pytest.raises(AtelierClientError) as info:
        result = call()
        if hasattr(result, "result"):
            result.result()
    return info.value.code, info.value.message


# --- Embed ----------------------------------------------------------------------------------------------
def test_embed_is_deterministic_and_matches_rest(
    live: LiveServer, client: AtelierClient, photos: dict[str, bytes]
) -> None:
    images = [photos["chelsea"], photos["coffee"]]
    first = client.embed(images)
    again = client.embed(images)
    assert first.backbone == "efficientnet_lite0" and first.tap == "pool" and first.dimension == 1280
    assert first.vectors.shape == (2, 1280) and first.vectors.dtype == np.float32 and not first.normalized
    assert np.array_equal(first.vectors, again.vectors)  # same input, same bits
    assert "cat" in first.predictions[0].label
    files = [("image", (f"{i}.png", b, "image/png")) for i, b in enumerate(images)]
    rest = live.http.post("/v1/embed", files=files)
    assert rest.status_code == 200, rest.text
    # REST's JSON numbers are the same float32 values: repeated float loses nothing on the way.
    rest_vectors = np.asarray([e["vector"] for e in rest.json()["embeddings"]], dtype=np.float32)
    assert np.array_equal(first.vectors, rest_vectors)
    unit = client.embed(photos["chelsea"], normalize=True)
    assert unit.normalized and unit.vectors.shape == (1, 1280)
    np.testing.assert_allclose(np.linalg.norm(unit.vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        unit.vectors[0], first.vectors[0] / np.linalg.norm(first.vectors[0]), atol=1e-5
    )


def test_embed_bad_requests_are_refused(client: AtelierClient, photos: dict[str, bytes]) -> None:
    code, message = status_of(lambda: client.embed([]))
    assert code == C.INVALID_ARGUMENT and "at least one image" in message
    code, message = status_of(lambda: client.embed(photos["coffee"], backbone="resnet9000"))
    assert code == C.NOT_FOUND and "resnet9000" in message


# --- galleries --------------------------------------------------------------------------------------------
def test_gallery_member_is_found_first_across_transports(
    live: LiveServer, client: AtelierClient, photos: dict[str, bytes]
) -> None:
    added = client.add_to_gallery("grpc-photos", {k: photos[k] for k in ("chelsea", "coffee", "astronaut")})
    assert (added.gallery, added.backbone, added.added, added.size) == (
        "grpc-photos",
        "efficientnet_lite0",
        3,
        3,
    )
    hits = client.search_gallery("grpc-photos", photos["coffee"], k=2)
    assert [h.id for h in hits][:1] == ["coffee"] and hits[0].distance < 1e-4 and len(hits) == 2
    assert hits[0].index == 1 and hits[1].distance > hits[0].distance
    # An image added over REST is found over gRPC: both transports share the plane's galleries.
    rest = live.http.post(
        "/v1/galleries/grpc-photos",
        files=[("image", ("r.png", photos["rocket"], "image/png"))],
        data={"names": '["rocket-from-rest"]'},
    )
    assert rest.status_code == 200 and rest.json()["size"] == 4, rest.text
    assert client.search_gallery("grpc-photos", photos["rocket"], k=1)[0].id == "rocket-from-rest"
    listed = {g.name: (g.backbone, g.size) for g in client.list_galleries()}
    assert listed["grpc-photos"] == ("efficientnet_lite0", 4)
    numbered = client.add_to_gallery("grpc-numbered", [photos["chelsea"], photos["rocket"]])
    assert numbered.size == 2
    assert client.search_gallery("grpc-numbered", photos["rocket"], k=1)[0].id == "1"  # by position


def test_gallery_errors_are_clear(client: AtelierClient, photos: dict[str, bytes]) -> None:
    code, message = status_of(lambda: client.search_gallery("no-such-gallery", photos["coffee"]))
    assert code == C.NOT_FOUND and "AddToGallery" in message
    code, message = status_of(lambda: client.add_to_gallery("../etc", [photos["coffee"]]))
    assert code == C.INVALID_ARGUMENT and "Gallery name" in message
    code, message = status_of(lambda: client.search_gallery("grpc-numbered", photos["coffee"], k=5000))
    assert code in (C.INVALID_ARGUMENT, C.NOT_FOUND) and ("k must be" in message or "No gallery" in message)
    mixed = {"a": photos["coffee"], "": photos["rocket"]}  # one id set, one empty: refused, not numbered
    code, message = status_of(lambda: client.add_to_gallery("grpc-mixed", mixed))
    assert code == C.INVALID_ARGUMENT and "names" in message.lower()


def test_gallery_limits_are_resource_exhausted(start_server: StartServer, photos: dict[str, bytes]) -> None:
    server = start_server(max_galleries=1, max_gallery_items=2, max_embed_images=3, warmup=False)
    images = list(photos.values())
    with AtelierClient(server.grpc_target, timeout=120) as c:
        assert c.add_to_gallery("a", images[:2]).size == 2
        with pytest.raises(AtelierClientError) as full:
            c.add_to_gallery("a", images[2:3])
        assert full.value.code == C.RESOURCE_EXHAUSTED and "at most 2 images" in full.value.message
        with pytest.raises(AtelierClientError) as other:
            c.add_to_gallery("b", images[:1])
        assert other.value.code == C.RESOURCE_EXHAUSTED and "at most 1 galleries" in other.value.message
        with pytest.raises(AtelierClientError) as many:
            c.embed(images)  # 4 images, the limit is 3
        assert many.value.code == C.INVALID_ARGUMENT and "the limit is 3" in many.value.message
        assert [(g.name, g.size) for g in c.list_galleries()] == [("a", 2)]  # nothing was added


# --- hostile images ---------------------------------------------------------------------------------------
def _hostile_request(rpc: str, data: bytes) -> Any:
    if rpc == "Embed":
        return pb.EmbedRequest(images=[data])
    if rpc == "AddToGallery":
        return pb.AddToGalleryRequest(gallery="grpc-hostile", images=[pb.GalleryImage(id="x", image=data)])
    if rpc == "SearchGallery":
        return pb.SearchGalleryRequest(gallery="grpc-photos", image=data)
    return pb.AttackRequest(image=data, method="pgd", target_label="ipod")


@pytest.fixture(scope="module")
def search_target(client: AtelierClient, photos: dict[str, bytes]) -> str:
    """A gallery to search, so SearchGallery reaches the hostile image instead of stopping at NOT_FOUND."""
    client.add_to_gallery("grpc-hostile-search", {"chelsea": photos["chelsea"]})
    return "grpc-hostile-search"


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("rpc", ["Embed", "AddToGallery", "SearchGallery", "Attack"])
def test_hostile_images_are_invalid_argument(
    client: AtelierClient, stub: pb_grpc.AtelierStub, search_target: str, rpc: str, kind: str
) -> None:
    data, _ = HOSTILE[kind]
    requests: dict[str, Any] = {
        "Embed": pb.EmbedRequest(images=[data]),
        "AddToGallery": pb.AddToGalleryRequest(
            gallery="grpc-hostile", images=[pb.GalleryImage(id="x", image=data)]
        ),
        "SearchGallery": pb.SearchGalleryRequest(gallery=search_target, image=data),
        "Attack": pb.AttackRequest(image=data, method="pgd", target_label="ipod"),
    }
    with pytest.raises(grpc.RpcError) as info:
        reply = getattr(stub, rpc)(requests[rpc], timeout=60)
        if rpc == "Attack":
            list(reply)  # a stream: its error arrives while reading
    err: Any = info.value
    assert err.code() == C.INVALID_ARGUMENT, (rpc, kind, err.code(), err.details())
    assert err.details() and "Internal" not in err.details()
    assert "grpc-hostile" not in {g.name for g in client.list_galleries()}  # nothing was made


# --- Attack -----------------------------------------------------------------------------------------------
def test_attack_reaches_its_target_and_ends_with_the_result(
    client: AtelierClient, photos: dict[str, bytes], lite0: Backbone
) -> None:
    updates = list(client.attack(photos["chelsea"], target="ipod", method="pgd", eps=8, steps=10))
    final = updates[-1]
    assert final.done and final.state == "succeeded" and all(not u.done for u in updates[:-1])
    assert any(u.step > 0 for u in updates[:-1]), "progress events come before the result"
    outcome = final.attack
    ipod = resolve_class("ipod")
    assert outcome is not None and outcome.method == "pgd" and outcome.target == ipod
    assert outcome.success and 1 <= outcome.steps <= 10 and 1 <= outcome.linf <= 8
    assert "cat" in outcome.before[0].label and outcome.after[0].index == ipod
    assert len(outcome.before) == len(outcome.after) == 5
    assert final.image is not None and final.content_type == "image/png"
    adversarial = decode_image(final.image)
    assert adversarial.shape == (224, 224, 3) == (final.height, final.width, 3)
    with torch.no_grad():  # what was sent back is what fools the classifier
        assert int(lite0(image_to_tensor(adversarial)).argmax()) == ipod
    assert outcome.perturbation is not None
    assert decode_image(outcome.perturbation).shape == (224, 224, 3)


def test_fooling_image_from_noise(client: AtelierClient) -> None:
    final = client.attack(None, target="goldfish", method="fooling", steps=3).result()
    assert final.attack is not None and final.attack.method == "fooling"
    assert final.attack.target == resolve_class("goldfish") and final.attack.steps == 3
    assert final.attack.perturbation is None and final.attack.before == [] and len(final.attack.after) == 5
    assert final.image is not None and decode_image(final.image).shape == (224, 224, 3)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"method": "deepfool"}, "Unknown attack"),
        ({"target": "no such class"}, "no such class"),
        ({"eps": 1000.0}, "eps must be"),
        ({"eps": 2.0, "options": {"eps": 2}}, "both as a field and in options"),
        ({"options": {"size": 64}}, "size"),
        ({"method": "fooling"}, "needs a target"),
        ({"method": "fooling", "target": "goldfish", "eps": 2.0}, "eps"),
    ],
)
def test_bad_attacks_are_refused_before_a_job_exists(
    client: AtelierClient, photos: dict[str, bytes], kwargs: dict[str, Any], says: str
) -> None:
    code, message = status_of(lambda: client.attack(photos["coffee"], **kwargs))
    assert code == C.INVALID_ARGUMENT and says in message, message


def test_cancelling_an_attack_frees_the_worker(
    live: LiveServer, client: AtelierClient, photos: dict[str, bytes]
) -> None:
    # The most PGD steps, no early stop: it runs until the test cancels it.
    stream = client.attack(photos["coffee"], steps=1000, options={"early_stop": False})
    first = next(u for u in stream if u.step > 0)  # running on the only worker
    job = live.plane.jobs.get(first.job_id)
    stream.cancel()
    assert job.wait(30), "the cancelled attack should stop within one step"
    assert job.state == "cancelled"
    # The only worker is free again: a short attack runs to its result (it would wait forever otherwise).
    assert client.attack(photos["coffee"], method="fgsm", eps=2).result().attack is not None


def test_new_rpcs_are_tracked_under_their_names(live: LiveServer, client: AtelierClient) -> None:
    # Refused calls are tracked like served ones (the servicer's _rpc): one cheap refusal per RPC.
    status_of(lambda: client.embed([]))
    status_of(lambda: client.add_to_gallery("../x", [b"x"]))
    status_of(lambda: client.search_gallery("../x", b"x"))
    status_of(lambda: client.attack(b"x", method="deepfool"))
    client.list_galleries()
    from prometheus_client.parser import text_string_to_metric_families

    samples = [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(live.http.get("/metrics").text)
        for sample in family.samples
    ]
    for method in ("Embed", "AddToGallery", "SearchGallery", "Attack"):
        wanted = {"transport": "grpc", "method": method, "reason": "invalid_argument"}
        assert ("atelier_errors_total", wanted) in samples, method
    served = [
        labels
        for name, labels in samples
        if name == "atelier_request_duration_seconds_count" and labels.get("method") == "ListGalleries"
    ]
    assert {"transport": "grpc", "method": "ListGalleries", "model": "", "code": "OK"} in served


# --- VGG pooling on the render RPCs -----------------------------------------------------------------------
def _render(
    client: AtelierClient, photos: dict[str, bytes], rpc: str, options: dict[str, Any], backbone: str = ""
) -> Any:
    if rpc == "Gatys":
        return client.gatys(photos["chelsea"], [photos["coffee"]], options=options, backbone=backbone)
    return client.deepdream(photos["chelsea"], options=options, backbone=backbone)


@pytest.mark.parametrize("rpc", ["Gatys", "DeepDream"])
@pytest.mark.parametrize(
    "pooling, says",
    [
        ("avg", "applies to the VGG backbones only, not efficientnet_lite0"),
        ("mean", "Unknown pooling 'mean'; use one of max, avg"),
        (2, "Option 'pooling' must be a string"),  # a Struct number
    ],
)
def test_pooling_is_checked_before_a_job_exists(
    client: AtelierClient, photos: dict[str, bytes], rpc: str, pooling: Any, says: str
) -> None:
    code, message = status_of(lambda: _render(client, photos, rpc, {"pooling": pooling, "steps": 1}))
    assert code == C.INVALID_ARGUMENT and says in message, message


def test_vgg_pooling_without_weights_is_failed_precondition(
    start_server: StartServer, photos: dict[str, bytes], tmp_path: Path
) -> None:
    server = start_server(vgg16_weights=tmp_path / "vgg16-397923af.pth", warmup=False)
    with AtelierClient(server.grpc_target, timeout=120) as c:
        for rpc in ("Gatys", "DeepDream"):
            for pooling in ("avg", "max"):
                options = {"pooling": pooling, "steps": 1}
                code, message = status_of(partial(_render, c, photos, rpc, options, backbone="vgg16"))
                assert code == C.FAILED_PRECONDITION and "vgg16-397923af.pth" in message, (rpc, message)
            bad = {"pooling": "mean"}
            code, message = status_of(partial(_render, c, photos, rpc, bad, backbone="vgg16"))
            assert code == C.INVALID_ARGUMENT and "Unknown pooling" in message
