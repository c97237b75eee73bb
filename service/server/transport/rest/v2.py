"""The Open Inference Protocol (KServe v2) REST routes, beside ``/v1`` on the same port and data plane.

| route | answer |
|---|---|
| ``GET /v2`` | server metadata: name, version, extensions |
| ``GET /v2/health/live`` | 200 ``{"live": true}`` while the process answers |
| ``GET /v2/health/ready`` | 200 ``{"ready": true}``, or 503 ``{"ready": false, "error": why}`` |
| ``GET /v2/models/{name}[/versions/{v}]`` | model metadata: tensors, datatypes, shapes (-1: any) |
| ``GET /v2/models/{name}[/versions/{v}]/ready`` | 200 ``{"name", "ready": true}``; 503 while not ready |
| ``POST /v2/models/{name}[/versions/{v}]/infer`` | inference: JSON tensors or binary tensor data |

The model routes are the ``/v1`` routes' equals: an API key when the server has keys, tracked with the
gRPC v2 method names (``ModelMetadata``, ``ModelReady``, ``ModelInfer``) as metric labels, errors from the
one status table; health and server metadata, like ``/healthz`` and ``/readyz``, need no key (a
Kubernetes or KServe probe carries none). Every error under ``/v2`` is the protocol's
``{"error": "<message>"}`` with the table's status (400 bad tensor, 404 unknown model, 413 too large,
401, 429, 503, ...). Not in ``/openapi.json``: the protocol publishes its own (open_inference_rest.yaml).
Spec: https://github.com/kserve/open-inference-protocol, specification/protocol/inference_rest.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from service.core.errors import InvalidArgument, NotFound, NotReady
from service.server.auth.authenticator import Authenticator
from service.server.auth.rest import key_dependency
from service.server.errors import public_message
from service.server.plane.dataplane import DataPlane
from service.server.plane.inference import InferenceModels, ModelMetadata
from service.server.transport.rest.errors import CallScope, error_response, route_class
from service.server.transport.rest.uploads import read_capped
from service.server.transport.rest.v2_body import HEADER_LENGTH, infer_response, parse_infer

PREFIX = "/v2"
METHOD_NAMES = {
    "model_metadata": "ModelMetadata",
    "model_version_metadata": "ModelMetadata",
    "model_ready": "ModelReady",
    "model_version_ready": "ModelReady",
    "model_infer": "ModelInfer",
    "model_version_infer": "ModelInfer",
}
PASSED_HEADERS = ("retry-after", "www-authenticate")
JSON_INLINE_BYTES = 64 * 1024  # JSON bodies above this are parsed in a worker thread, not on the loop


def v2_error(exc: BaseException) -> JSONResponse:
    """An error in the protocol's shape, ``{"error": message}``, with the status and the Retry-After /
    WWW-Authenticate headers our ``/v1`` answer would carry."""
    ours = error_response(exc)
    headers = {k: v for k, v in ours.headers.items() if k.lower() in PASSED_HEADERS}
    return JSONResponse({"error": public_message(exc)}, status_code=ours.status_code, headers=headers)


def metadata_json(meta: ModelMetadata) -> dict[str, Any]:
    def tensors(items: Any) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

    return {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": tensors(meta.inputs),
        "outputs": tensors(meta.outputs),
        "properties": meta.properties,
    }


def install_v2(app: FastAPI, plane: DataPlane, auth: Authenticator | None = None) -> None:
    """Add the ``/v2`` routes to ``app``: the open ones, the keyed model routes, then a catch-all that
    answers any other ``/v2`` path 404 in the protocol's shape (registered last so it shadows nothing)."""
    models = InferenceModels(plane)
    app.include_router(_open_router(models))
    app.include_router(_model_router(plane, models, auth))

    @app.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    async def v2_unknown(request: Request, rest: str) -> JSONResponse:
        return v2_error(
            NotFound(
                f"No such route: {request.method} {request.url.path}. This server speaks the Open "
                "Inference Protocol's health, metadata, ready and infer routes (docs/v2.md)."
            )
        )


def _open_router(models: InferenceModels) -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("")
    async def server_metadata() -> dict[str, Any]:
        name, version, extensions = models.server_metadata()
        return {"name": name, "version": version, "extensions": list(extensions)}

    @router.get("/health/live")
    async def server_live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/health/ready")
    async def server_ready() -> JSONResponse:
        if models.ready:
            return JSONResponse({"ready": True})
        # 503 like /readyz: a probe fails on any status >= 400, tritonclient reads "not 200" as false.
        return JSONResponse(
            {"ready": False, "error": models.not_ready_reason()}, 503, headers={"Retry-After": "1"}
        )

    return router


def _model_router(plane: DataPlane, models: InferenceModels, auth: Authenticator | None) -> APIRouter:
    keyed = [Depends(key_dependency(auth))] if auth is not None and auth.enabled else []
    router = APIRouter(
        prefix=PREFIX + "/models/{name}",
        route_class=route_class(plane.metrics, METHOD_NAMES, respond=v2_error),
        dependencies=keyed,
        include_in_schema=False,
    )
    max_bytes = plane.config.limits.max_bytes

    def metadata(scope: CallScope, name: str, version: str) -> dict[str, Any]:
        scope.model = name
        return metadata_json(models.metadata(name, version))

    def ready(scope: CallScope, name: str, version: str) -> JSONResponse:
        scope.model = name
        if not models.model_ready(name, version):
            raise NotReady(models.not_ready_reason() or "The server is starting.")
        return JSONResponse({"name": name, "ready": True})

    async def infer(request: Request, scope: CallScope, name: str, version: str) -> Response:
        scope.model = name
        model = models.model(name, version)  # unknown model or version: 404 before the body is read
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise InvalidArgument(
                f"Content-Encoding {encoding!r} is not supported; send the body uncompressed."
            )
        body = await read_capped(request, max_bytes)
        header_length = request.headers.get(HEADER_LENGTH)
        if header_length is None and len(body) > JSON_INLINE_BYTES:  # a large JSON document: off the loop
            parsed = await asyncio.to_thread(parse_infer, body, None)
        else:
            parsed = parse_infer(body, header_length)
        models.check_header(model, parsed.inputs, [o.name for o in parsed.outputs])
        if parsed.has_values:  # JSON numbers to numpy: real work for an image, off the event loop
            decoded = await asyncio.to_thread(models.decode_inputs, model, parsed.inputs)
        else:
            decoded = models.decode_inputs(model, parsed.inputs)
        result = await models.infer(model, decoded, parsed.deadline)
        wants_json = not all(o.binary for o in parsed.outputs) if parsed.outputs else not parsed.binary_output
        if wants_json:  # an image as a JSON list of numbers is real work too
            content, header_len = await asyncio.to_thread(infer_response, parsed, result)
        else:
            content, header_len = infer_response(parsed, result)
        if header_len is None:
            return Response(content, media_type="application/json")
        return Response(
            content, media_type="application/octet-stream", headers={HEADER_LENGTH: str(header_len)}
        )

    @router.get("")
    async def model_metadata(scope: CallScope, name: str) -> dict[str, Any]:
        return metadata(scope, name, "")

    @router.get("/versions/{version}")
    async def model_version_metadata(scope: CallScope, name: str, version: str) -> dict[str, Any]:
        return metadata(scope, name, version)

    @router.get("/ready")
    async def model_ready(scope: CallScope, name: str) -> JSONResponse:
        return ready(scope, name, "")

    @router.get("/versions/{version}/ready")
    async def model_version_ready(scope: CallScope, name: str, version: str) -> JSONResponse:
        return ready(scope, name, version)

    @router.post("/infer")
    async def model_infer(request: Request, scope: CallScope, name: str) -> Response:
        return await infer(request, scope, name, "")

    @router.post("/versions/{version}/infer")
    async def model_version_infer(request: Request, scope: CallScope, name: str, version: str) -> Response:
        return await infer(request, scope, name, version)

    return router
