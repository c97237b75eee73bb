"""Registering a servicer (``atelier.v1.Atelier``, and ``inference.GRPCInferenceService`` of the v2
protocol) so a request that is not a valid protobuf message is INVALID_ARGUMENT, like any other bad
input, and not UNKNOWN.

The generated ``add_AtelierServicer_to_server`` hands the raw bytes to ``Request.FromString``; when that
raises (random bytes, a truncated message, a string field that is not UTF-8), grpc answers UNKNOWN with
"Exception deserializing request!" and the call is never tracked. Here the deserializer catches the
``DecodeError`` and returns an ``Undecodable`` in place of the request; the method handler sees it first
and raises ``InvalidArgument`` inside the servicer's ``_rpc`` (so the API key is checked, the call is
counted, and the status comes from the one error table like every other).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError

from service.api.v1 import atelier_pb2 as pb
from service.core.errors import InvalidArgument
from service.server.transport.grpc.servicer import AtelierServicer


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes did not parse as the method's message."""

    message_type: str
    detail: str
    proto: str = "atelier/v1/atelier.proto"

    def error(self) -> InvalidArgument:
        why = self.detail.strip() or "not a valid protobuf encoding"
        return InvalidArgument(
            f"The request is not a valid {self.message_type} message ({why}); "
            f"send it with a client generated from {self.proto}."
        )


class TrackedServicer(Protocol):
    """A servicer whose ``_rpc`` tracks a call and answers its errors (``servicer.rpc_scope``)."""

    def _rpc(
        self, context: grpc.aio.ServicerContext, method: str, model: str = ""
    ) -> AbstractAsyncContextManager[Any]: ...


def _deserializer(cls: Any) -> Callable[[bytes], Any]:
    name = cls.DESCRIPTOR.full_name
    proto = cls.DESCRIPTOR.file.name

    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except DecodeError as exc:
            return Undecodable(name, str(exc)[:200], proto)

    return parse


Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def _unary(servicer: TrackedServicer, method: str, behaviour: Unary) -> Unary:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            async with servicer._rpc(context, method):
                raise request.error()
        return await behaviour(request, context)

    return handle


def _streaming(servicer: TrackedServicer, method: str, behaviour: Streaming) -> Streaming:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, Undecodable):
            async with servicer._rpc(context, method):
                raise request.error()
        async for item in behaviour(request, context):
            yield item

    return handle


def method_handlers(
    servicer: TrackedServicer, module: ModuleType = pb, service: str = "Atelier"
) -> dict[str, grpc.RpcMethodHandler]:
    """One handler per method of ``service`` in the generated ``module``, with the tolerant deserializer."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for m in module.DESCRIPTOR.services_by_name[service].methods:
        request_cls = getattr(module, m.input_type.name)
        response_cls = getattr(module, m.output_type.name)
        behaviour = getattr(servicer, m.name)
        if m.client_streaming:
            raise NotImplementedError(f"client-streaming method {m.name} has no tolerant handler yet")
        if m.server_streaming:
            handlers[m.name] = grpc.unary_stream_rpc_method_handler(
                _streaming(servicer, m.name, behaviour),
                request_deserializer=_deserializer(request_cls),
                response_serializer=response_cls.SerializeToString,
            )
        else:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(
                _unary(servicer, m.name, behaviour),
                request_deserializer=_deserializer(request_cls),
                response_serializer=response_cls.SerializeToString,
            )
    return handlers


def add_servicer(
    servicer: TrackedServicer, server: grpc.aio.Server, module: ModuleType, service: str
) -> None:
    """The generated ``add_<Service>Servicer_to_server``, with undecodable requests INVALID_ARGUMENT."""
    handlers = method_handlers(servicer, module, service)
    full_name = module.DESCRIPTOR.services_by_name[service].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(full_name, handlers),))
    register = getattr(server, "add_registered_method_handlers", None)
    if register is not None:  # grpc >= 1.62: faster lookup of known methods, as the generated code does
        register(full_name, handlers)


def add_atelier_servicer(servicer: AtelierServicer, server: grpc.aio.Server) -> None:
    """``add_AtelierServicer_to_server`` with undecodable requests answered INVALID_ARGUMENT."""
    add_servicer(servicer, server, pb, "Atelier")
