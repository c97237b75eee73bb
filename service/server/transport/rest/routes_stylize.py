"""``POST /v1/stylize``: a named style, a blend of a multi-style net's styles, any painting, or two styles
painted by region (docs/multi_style_api.md).

The call's style, in one of three ways: ``style`` (a name from ``GET /v1/styles``), ``blend``
(``starry_night:0.7,the_scream:0.3``, ``starry_night=0.7,...`` or JSON; ``model`` may name the net), or a
``style_image`` part (arbitrary style, WCT). Paint by region: a ``mask`` file part (greyscale or alpha,
white/opaque = the subject, the photo's aspect ratio) or ``mask=saliency`` (the Grad-CAM map of the top
class); the style or blend paints the subject and ``background`` / ``background_blend`` the rest (by
default the photo itself, unstyled). The text parameters may also come as multipart form fields.
Everything goes to ``plane.stylize`` (``plane.arbitrary`` for a painting); its errors map through the
route class like any other route's.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.core.arbitrary.engine import MODEL_NAME as ARBITRARY_MODEL
from service.core.errors import InvalidArgument, quoted
from service.server.plane.dataplane import DataPlane, Region
from service.server.transport.rest.errors import CallScope
from service.server.transport.rest.schemas import image_body, image_response
from service.server.transport.rest.uploads import Upload, read_upload

SALIENCY = "saliency"
TEXT_FIELDS = ("style", "blend", "model", "mask", "background", "background_blend")


def _ascii(text: str) -> str:
    """A header value: style names come from the manifest, but a header must be ASCII whatever they are."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _text(upload: Upload, name: str, query: str | None) -> str | None:
    """A text parameter from the query string or a form field of the same name (not both)."""
    field = upload.fields.get(name)
    if field is not None and query is not None:
        raise InvalidArgument(f"Send {name} once: as a query parameter or as a form field, not both.")
    value = field if field is not None else query
    return value if value is None or value.strip() else None


def _region(
    upload: Upload, mask: str | None, background: str | None, background_blend: str | None
) -> Region | None:
    mask_file = upload.optional("mask")
    if mask is not None and mask != SALIENCY:
        raise InvalidArgument(
            f"mask={quoted(mask)} is not known: send mask=saliency, or the mask as a multipart file part "
            "(curl -F image=@photo.jpg -F mask=@mask.png ...)."
        )
    if mask_file is None and mask is None:
        if background is not None or background_blend is not None:
            raise InvalidArgument(
                "background and background_blend paint outside a mask: send a mask part or mask=saliency."
            )
        return None
    return Region(mask_file, mask == SALIENCY, background, background_blend)


def add_stylize_route(router: APIRouter, plane: DataPlane, max_bytes: int) -> None:
    @router.post(
        "/stylize",
        summary="Stylise an image: a style, a blend of styles, any painting, or two styles by region",
        response_class=Response,
        openapi_extra=image_body("image", "style_image", "mask"),
        responses=image_response("image/png", "image/jpeg", "image/webp"),
    )
    async def stylize(
        request: Request,
        scope: CallScope,
        style: Annotated[
            str | None, Query(description="a name from GET /v1/styles (or send a blend or a style_image)")
        ] = None,
        blend: Annotated[
            str | None,
            Query(
                description="weights of a multi-style net's styles: starry_night:0.7,the_scream:0.3 or JSON"
            ),
        ] = None,
        model: Annotated[str | None, Query(description="the net a style or blend must come from")] = None,
        mask: Annotated[
            str | None, Query(description="'saliency': paint the salient subject (or send a mask file part)")
        ] = None,
        background: Annotated[
            str | None, Query(description="with a mask: the style painted outside it (default: the photo)")
        ] = None,
        background_blend: Annotated[
            str | None, Query(description="with a mask: a blend painted outside it instead")
        ] = None,
        strength: Annotated[float, Query(description="0..1 blend with the content")] = 1.0,
        preserve_color: Annotated[bool, Query(description="keep the photo's colours")] = False,
        max_side: Annotated[
            int | None, Query(description="downscale so the longer side is at most this")
        ] = None,
        style_size: Annotated[
            int | None, Query(description="with style_image: the painting's longer side, 32-1024 (512)")
        ] = None,
        fmt: Annotated[str, Query(alias="format", description="png, jpeg or webp")] = "png",
        quality: Annotated[int, Query(description="JPEG/WebP quality, 1-100")] = 90,
        timeout_s: Annotated[
            float | None,
            Query(gt=0, description="seconds until the server gives up (504)"),
        ] = None,
    ) -> Response:
        """``multipart/form-data`` with an ``image`` and a ``style_image`` part (any painting: arbitrary
        style transfer, WCT; 424 when the server has no arbitrary-style model) instead of ``style``; or
        with a ``mask`` part to paint by region."""
        upload = await read_upload(request, max_bytes, max_images=3)
        given = dict(zip(TEXT_FIELDS, (style, blend, model, mask, background, background_blend), strict=True))
        style, blend, model, mask, background, background_blend = (
            _text(upload, k, v) for k, v in given.items()
        )
        painting = upload.optional("style_image")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        region = _region(upload, mask, background, background_blend)
        if painting is not None:
            if style is not None or blend is not None or region is not None:
                raise InvalidArgument(
                    "Send a style name or a style_image part, not both (nor a blend or a mask with a painting)."
                )
            scope.model = ARBITRARY_MODEL  # every painting under one label, never its sha
            res = await plane.arbitrary.stylize(
                upload.one("image"), painting, strength, preserve_color, max_side, style_size, fmt, quality,
                deadline,
            )  # fmt: skip
        else:
            if style is None and blend is None:
                raise InvalidArgument(
                    "Query parameter 'style' is required (a name from GET /v1/styles), or a 'blend' "
                    "(starry_night:0.7,the_scream:0.3), or send a painting as a multipart style_image part "
                    "(curl -F image=@photo.jpg -F style_image=@art.jpg ...)."
                )
            if style_size is not None:
                raise InvalidArgument("style_size applies only with a style_image part.")
            res = await plane.stylize(
                upload.one("image"), style, strength, preserve_color, max_side, fmt, quality,
                deadline=deadline, blend=blend, model=model, region=region,
            )  # fmt: skip
        scope.model = res.model
        headers = {
            "X-Atelier-Model": res.model,
            "X-Atelier-Model-Version": res.version,
            "X-Atelier-Provider": res.provider,
            "X-Atelier-Batch-Size": str(res.batch_size),
            "Server-Timing": ", ".join(f"{k};dur={v:.1f}" for k, v in res.timings.items()),
        }
        if res.style:
            headers["X-Atelier-Style"] = _ascii(res.style)
        if res.background:
            headers["X-Atelier-Background"] = _ascii(res.background)
        if painting is not None:
            headers["X-Atelier-Style-Cache"] = "hit" if res.style_cached else "miss"
        return Response(res.image, media_type=res.content_type, headers=headers)
