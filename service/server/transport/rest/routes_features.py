"""REST routes for embeddings, galleries and adversarial jobs (``service.server.plane.features``).

| route | answer |
|---|---|
| ``POST /v1/embed?normalize=false`` | one vector (and top-1 class) per image: a raw body or ``image`` files |
| ``GET /v1/galleries`` | the galleries: backbone and size |
| ``POST /v1/galleries/{name}`` | embed ``image`` files (``names``: a JSON list) into the gallery |
| ``POST /v1/galleries/{name}/search?k=8`` | the k nearest gallery items to one image, cosine distance |
| ``POST /v1/jobs/attack?method=pgd&target=ipod`` | 202 and the job: FGSM, PGD or a fooling image (no |
|  | image sent: it starts from noise); the result is a PNG |

Job status, events, result and cancel are the ``/v1/jobs/{id}`` routes every job has.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.core.errors import InvalidArgument
from service.server.auth.authenticator import Authenticator
from service.server.auth.rest import key_dependency
from service.server.plane.dataplane import DataPlane
from service.server.plane.features import features_of
from service.server.transport.rest.errors import CallScope, route_class
from service.server.transport.rest.schemas import (
    API_PREFIX,
    ERROR_RESPONSES,
    JobOut,
    PredictionOut,
    image_body,
    job_out,
)
from service.server.transport.rest.uploads import (
    content_type_of,
    parse_json_object,
    parse_target,
    read_upload,
)

METHOD_NAMES = {
    "embed": "Embed",
    "list_galleries": "ListGalleries",
    "gallery_add": "AddToGallery",
    "gallery_search": "SearchGallery",
    "submit_attack": "Attack",
}
Backbone = Annotated[str | None, Query(description="efficientnet_lite0 (default), vgg16 or vgg19")]
Timeout = Annotated[float | None, Query(gt=0, description="seconds until the server gives up (504)")]


class EmbeddingOut(BaseModel):
    vector: list[float]
    prediction: PredictionOut = Field(description="the top-1 ImageNet class of the same forward pass")


class EmbedOut(BaseModel):
    backbone: str
    tap: str = Field(description="the layer the vector is read at: pool (Lite0, 1280-d), relu7 (VGG, 4096-d)")
    dimension: int
    normalized: bool
    embeddings: list[EmbeddingOut] = Field(description="one per image, in the order sent")


class GalleryInfo(BaseModel):
    name: str
    backbone: str
    size: int


class GalleriesOut(BaseModel):
    galleries: list[GalleryInfo]


class GalleryAddOut(GalleryInfo):
    added: int


class NeighbourOut(BaseModel):
    name: str
    distance: float = Field(description="cosine distance, 0 (same direction) .. 2")
    index: int = Field(description="position in the gallery (insertion order)")


class SearchOut(BaseModel):
    gallery: str
    backbone: str
    neighbours: list[NeighbourOut] = Field(description="nearest first")


def _optional_image_body() -> dict[str, Any]:
    """OpenAPI for the attack's image: required for FGSM and PGD, none for a fooling image."""
    body = image_body("image", required=())
    body["requestBody"]["required"] = False
    return body


def _no_body(request: Request) -> bool:
    """The request carries no body: no Content-Type, no Content-Length above 0, not chunked."""
    headers = request.headers
    return (
        not content_type_of(request)
        and headers.get("content-length", "0").strip() == "0"
        and "transfer-encoding" not in headers
    )


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s


def build_features_router(plane: DataPlane, auth: Authenticator | None = None) -> APIRouter:
    keyed = [Depends(key_dependency(auth))] if auth is not None and auth.enabled else []
    router = APIRouter(
        prefix=API_PREFIX,
        responses=ERROR_RESPONSES,
        route_class=route_class(plane.metrics, METHOD_NAMES),
        dependencies=keyed,
    )
    features = features_of(plane)
    max_bytes = plane.config.limits.max_bytes
    most = plane.config.features.max_embed_images

    @router.post(
        "/embed",
        response_model=EmbedOut,
        summary="Feature vectors of images",
        openapi_extra=image_body("image"),
    )
    async def embed(
        request: Request,
        scope: CallScope,
        normalize: Annotated[bool, Query(description="scale each vector to unit L2 norm")] = False,
        backbone: Backbone = None,
        timeout_s: Timeout = None,
    ) -> EmbedOut:
        upload = await read_upload(request, max_bytes, max_images=most)
        images = upload.files.get("image", [])
        if not images:
            upload.one("image")  # raises, naming the fields that were sent
        net, result = await features.embed(images, normalize, backbone, _deadline(timeout_s))
        scope.model = net
        preds = result.predictions or []
        rows = [
            EmbeddingOut(vector=v.tolist(), prediction=PredictionOut(**vars(p[0])))
            for v, p in zip(result.vectors, preds, strict=True)
        ]
        return EmbedOut(
            backbone=net,
            tap=result.tap,
            dimension=result.dimension,
            normalized=result.normalized,
            embeddings=rows,
        )

    @router.get("/galleries", response_model=GalleriesOut, summary="The galleries this server keeps")
    async def list_galleries(scope: CallScope) -> GalleriesOut:
        rows = [GalleryInfo(name=n, backbone=b, size=s) for n, (b, s) in features.galleries().items()]
        return GalleriesOut(galleries=rows)

    @router.post(
        "/galleries/{name}",
        response_model=GalleryAddOut,
        summary="Add images to a gallery (made on first use)",
        openapi_extra=image_body("image", raw=False),
    )
    async def gallery_add(
        name: str, request: Request, scope: CallScope, backbone: Backbone = None, timeout_s: Timeout = None
    ) -> GalleryAddOut:
        upload = await read_upload(request, max_bytes, max_images=most)
        images = upload.files.get("image", [])
        if not images:
            upload.one("image")
        names = None
        if "names" in upload.fields:
            try:
                listed = json.loads(upload.fields["names"])
            except ValueError:
                listed = None
            if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                raise InvalidArgument("The field 'names' must be a JSON list of strings, one per image.")
            names = listed
        net, added, size = await features.gallery_add(name, images, names, backbone, _deadline(timeout_s))
        scope.model = net
        return GalleryAddOut(name=name, backbone=net, size=size, added=added)

    @router.post(
        "/galleries/{name}/search",
        response_model=SearchOut,
        summary="The nearest gallery items to an image",
        openapi_extra=image_body("image"),
    )
    async def gallery_search(
        name: str,
        request: Request,
        scope: CallScope,
        k: Annotated[int, Query(description="how many neighbours, 1-1000")] = 8,
        timeout_s: Timeout = None,
    ) -> SearchOut:
        image = (await read_upload(request, max_bytes)).one("image")
        net, hits = await features.gallery_search(name, image, k, _deadline(timeout_s))
        scope.model = net
        rows = [NeighbourOut(name=h.name, distance=h.distance, index=h.index) for h in hits]
        return SearchOut(gallery=name, backbone=net, neighbours=rows)

    @router.post(
        "/jobs/attack",
        status_code=202,
        summary="Start an adversarial attack job (FGSM, PGD or a fooling image on EfficientNet-Lite0)",
        response_model=JobOut,
        responses={202: {"model": JobOut, "description": "job accepted"}},
        openapi_extra=_optional_image_body(),
    )
    async def submit_attack(
        request: Request,
        scope: CallScope,
        method: Annotated[
            str, Query(description="fgsm, pgd (both need an image) or fooling (no image: from noise)")
        ] = "pgd",
        target: Annotated[
            str | None, Query(description="ImageNet index or label; default: untargeted")
        ] = None,
        options: Annotated[
            str | None, Query(description='JSON, e.g. {"eps": 2, "steps": 20} (eps in 0-255 units)')
        ] = None,
        timeout_s: Timeout = None,
    ) -> JSONResponse:
        # No body at all is no image (a fooling image needs none; the plane refuses it for FGSM / PGD).
        upload = None if _no_body(request) else await read_upload(request, max_bytes)
        image = upload.optional("image") if upload is not None else None
        scope.model = "efficientnet_lite0"
        opts = parse_json_object(options, "options")
        job = await features.submit_attack(
            image, method, parse_target(target), opts, _deadline(timeout_s), scope.owner
        )
        body = job_out(job).model_dump(mode="json")
        return JSONResponse(body, status_code=202, headers={"Location": body["urls"]["status"]})

    return router
