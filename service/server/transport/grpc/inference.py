"""``inference.GRPCInferenceService``: the Open Inference Protocol (KServe v2) on our gRPC port.

Generated from the protocol's own definition (``protos/inference/open_inference_grpc.proto``, KServe's
open-inference-protocol) and registered on the same server as ``atelier.v1.Atelier``
(``service/server/app.py``), over the same data plane: every call is the REST ``/v2`` routes' twin
(``transport/rest/v2.py``), both through ``plane/inference.py``. ServerLive, ServerReady and
ServerMetadata need no key (like ``grpc.health.v1``); ModelReady, ModelMetadata and ModelInfer are
tracked and keyed like our own RPCs (``servicer.rpc_scope``), with these method names as metric labels.
A method the proto does not define (Triton's repository or statistics calls) is answered UNIMPLEMENTED by
grpc itself. Inputs come as ``raw_input_contents`` (what tritonclient sends) or typed ``contents``;
the output always goes back as ``raw_output_contents``, as Triton answers.
Spec: https://github.com/kserve/open-inference-protocol, specification/protocol/inference_grpc.md.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

from service.api.inference import open_inference_grpc_pb2 as pb
from service.api.inference import open_inference_grpc_pb2_grpc as pb_grpc
from service.core.errors import InvalidArgument
from service.server.auth.authenticator import Authenticator
from service.server.plane.dataplane import DataPlane
from service.server.plane.inference import InferenceModels
from service.server.plane.tensors import InputTensor, TensorMeta, parse_shape
from service.server.plane.tracking import RequestScope
from service.server.transport.grpc.convert import deadline_of
from service.server.transport.grpc.servicer import rpc_scope

SERVICE = "GRPCInferenceService"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name[SERVICE].full_name  # "inference.GRPCInferenceService"
# Where typed (non-raw) data of each datatype our inputs take travels in InferTensorContents.
CONTENTS_FIELD = {"UINT8": "uint_contents", "FP32": "fp32_contents", "BOOL": "bool_contents"}


def _tensors(items: tuple[TensorMeta, ...]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [
        pb.ModelMetadataResponse.TensorMetadata(name=t.name, datatype=t.datatype, shape=list(t.shape))
        for t in items
    ]


def input_tensors(request: pb.ModelInferRequest) -> tuple[list[InputTensor], bool]:
    """The request's inputs with their data, and whether any came as typed values (numpy work)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; give one per input."
        )
    if len(request.inputs) > 16:
        raise InvalidArgument(f"The request has {len(request.inputs)} inputs; at most 16 are read.")
    tensors: list[InputTensor] = []
    for i, t in enumerate(request.inputs):
        if not t.name:
            raise InvalidArgument(f"Input {i} has no name.")
        shape = parse_shape(t.name, list(t.shape))
        if raw:
            if t.HasField("contents"):
                raise InvalidArgument(
                    f"Input {t.name!r} has contents while raw_input_contents is used; use one or the other."
                )
            tensors.append(InputTensor(t.name, t.datatype, shape, raw=raw[i]))
        else:
            field = CONTENTS_FIELD.get(t.datatype)
            values = getattr(t.contents, field) if field is not None else []
            tensors.append(InputTensor(t.name, t.datatype, shape, values=values))
    return tensors, not raw


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: DataPlane, auth: Authenticator | None = None) -> None:
        self.plane = plane
        self.auth = auth if auth is not None else Authenticator.open()
        self.models = InferenceModels(plane)

    def _rpc(
        self, context: grpc.aio.ServicerContext, method: str, model: str = ""
    ) -> AbstractAsyncContextManager[RequestScope]:
        return rpc_scope(self.plane, self.auth, context, method, model)

    # --- health and server metadata: no key, not tracked (probes) ---------------------------------------
    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.models.ready)

    async def ServerMetadata(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        name, version, extensions = self.models.server_metadata()
        return pb.ServerMetadataResponse(name=name, version=version, extensions=list(extensions))

    # --- the model calls ------------------------------------------------------------------------------
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        async with self._rpc(context, "ModelReady", request.name):
            ready = self.models.model_ready(request.name, request.version)
        return pb.ModelReadyResponse(ready=ready)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        async with self._rpc(context, "ModelMetadata", request.name):
            meta = self.models.metadata(request.name, request.version)
        return pb.ModelMetadataResponse(
            name=meta.name,
            versions=list(meta.versions),
            platform=meta.platform,
            inputs=_tensors(meta.inputs),
            outputs=_tensors(meta.outputs),
            properties=meta.properties,
        )

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        async with self._rpc(context, "ModelInfer", request.model_name):
            model = self.models.model(request.model_name, request.model_version)  # NOT_FOUND first
            inputs, typed = input_tensors(request)
            self.models.check_header(model, inputs, [o.name for o in request.outputs])
            if typed:  # repeated numbers to numpy: real work for an image, off the event loop
                decoded = await asyncio.to_thread(self.models.decode_inputs, model, inputs)
            else:
                decoded = self.models.decode_inputs(model, inputs)
            result = await self.models.infer(model, decoded, deadline_of(context))
        response = pb.ModelInferResponse(model_name=result.model, model_version=result.version, id=request.id)
        for tensor in result.outputs:
            response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape))
            response.raw_output_contents.append(tensor.raw())
        return response
