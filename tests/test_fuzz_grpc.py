"""Random requests for every RPC of ``atelier.v1.Atelier`` against a real gRPC server.

The requests come from the proto descriptors (``fuzz/grpc_strategies.py``): every field set or unset at
random, random ``Struct`` options keyed by the algorithm's option names, random bytes and valid or broken
small images. The property: every call ends OK or with a status the caller caused (INVALID_ARGUMENT,
NOT_FOUND, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, DEADLINE_EXCEEDED, ...), never INTERNAL or UNKNOWN;
the server records no internal error, and it still answers health checks and real work afterwards.
``scripts/fuzz.sh`` runs the same tests with many more examples.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given

from fuzz.grpc_strategies import SERVICE, request_strategy, small_image
from fuzz.hypo import fuzz_settings
from fuzz.live import STYLES, FuzzServer
from fuzz.targets import option_fields
from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.core.imageio import decode_image
from tests.tinymodels import write_tiny_models

C = grpc.StatusCode
# Statuses a request can earn by itself; INTERNAL, UNKNOWN (and UNAVAILABLE/CANCELLED, which nobody
# asked for here) mean the server failed.
CALLER_CAUSED = {
    C.OK,
    C.INVALID_ARGUMENT,
    C.NOT_FOUND,
    C.RESOURCE_EXHAUSTED,
    C.FAILED_PRECONDITION,
    C.OUT_OF_RANGE,
    C.UNAUTHENTICATED,
    C.PERMISSION_DENIED,
    C.DEADLINE_EXCEEDED,
}
STREAMING = {m.name for m in SERVICE.methods if m.server_streaming}
# The options each RPC's Struct carries (name -> type hint). Saliency's are gradcam's and smoothgrad's:
# a request naming another method gets them refused as unknown, which is fuzzing too.
STRUCT_FIELDS = {
    "Saliency": option_fields("saliency:gradcam") | option_fields("saliency:smoothgrad"),
    "Gatys": option_fields("gatys"),
    "DeepDream": option_fields("deepdream"),
}
SEEN: dict[str, Counter[str]] = {}  # status counts per method, printed with -s (docs/fuzzing.md)
CALL_TIMEOUT_S = 20.0  # generous: the server's own job cap (4 s) ends renders long before
EXAMPLES = {
    "Stylize": 30,
    "ListStyles": 2,
    "Classify": 10,
    "Saliency": 8,
    "Gatys": 8,
    "DeepDream": 8,
    "Embed": 8,
    "ListGalleries": 2,
    "AddToGallery": 8,
    "SearchGallery": 8,
    "Attack": 8,
    "WatchJob": 4,
    "CancelJob": 4,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    models = write_tiny_models(tmp_path_factory.mktemp("models"), names=STYLES)
    with FuzzServer(Path(models)) as s:
        yield s


@pytest.fixture(scope="module")
def channel(server: FuzzServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


def call(channel: grpc.Channel, method: str, request: Message) -> tuple[grpc.StatusCode, str, list[Message]]:
    """Send ``request``; return the status, its details and the response messages."""
    stub = pb_grpc.AtelierStub(channel)
    fn = getattr(stub, method)
    try:
        if method in STREAMING:
            replies = list(fn(request, timeout=CALL_TIMEOUT_S))
        else:
            replies = [fn(request, timeout=CALL_TIMEOUT_S)]
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", []
    return C.OK, "", replies


def check_ok(method: str, replies: list[Any]) -> None:
    """A successful answer is a usable one."""
    if method == "Stylize":
        (res,) = replies
        img = decode_image(res.image)
        assert (img.shape[1], img.shape[0]) == (res.width, res.height)
    elif method in STREAMING:
        assert replies and replies[-1].WhichOneof("event") == "result", replies[-1:]
        assert decode_image(replies[-1].result.image).size > 0


@pytest.mark.parametrize("method", sorted(EXAMPLES))
def test_every_rpc_answers_random_requests_with_a_caller_status(channel: grpc.Channel, method: str) -> None:
    assert set(EXAMPLES) == {m.name for m in SERVICE.methods}, "a new RPC needs an example count"
    strategy = request_strategy(method, STRUCT_FIELDS.get(method))

    @fuzz_settings(EXAMPLES[method])
    @given(request=strategy)
    def run(request: Message) -> None:
        code, details, replies = call(channel, method, request)
        SEEN.setdefault(method, Counter())[code.name] += 1
        if os.environ.get("ATELIER_FUZZ_VERBOSE"):
            print(method, code.name, details[:150])
        assert code in CALLER_CAUSED, f"{method} -> {code.name}: {details}"
        if code is C.OK:
            check_ok(method, replies)

    run()
    print(f"\n{method}: {dict(SEEN.get(method, {}))}")


# Bodies that are not protobuf wire format: field number 0 with an invalid wire type, a length prefix
# far beyond the body, a varint cut short.
CORRUPT_BODIES = [b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x08"]


@pytest.mark.parametrize("method", sorted(EXAMPLES))
def test_unparseable_request_bytes_are_the_callers_fault(channel: grpc.Channel, method: str) -> None:
    path = f"/{SERVICE.full_name}/{method}"
    codes = {}
    for body in CORRUPT_BODIES:
        # No serializers: the body goes on the wire as given.
        fn = (channel.unary_stream if method in STREAMING else channel.unary_unary)(path, None, None)
        try:
            result = fn(body, timeout=CALL_TIMEOUT_S)
            if method in STREAMING:
                list(result)
            codes[body] = C.OK
        except grpc.RpcError as exc:
            codes[body] = exc.code()
    assert set(codes.values()) <= CALLER_CAUSED, codes


def test_server_is_healthy_and_recorded_no_internal_error_after_fuzzing(
    server: FuzzServer, channel: grpc.Channel
) -> None:
    # Runs after the fuzz tests of this module (pytest keeps file order).
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE.full_name), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    res = pb_grpc.AtelierStub(channel).Stylize(
        pb.StylizeRequest(image=small_image(32, 24, "PNG", 0), style=STYLES[0]), timeout=30
    )
    assert (res.width, res.height) == (32, 24)
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    internal = [line for line in metrics.splitlines() if re.search(r'reason="(internal|error)"', line)]
    assert all(float(line.rsplit(" ", 1)[1]) == 0 for line in internal), internal
