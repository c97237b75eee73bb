"""A helper the gRPC test files share: the status code and details a failing call raises."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from service.api.v1 import atelier_pb2 as pb


def code_of(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        result = call(*args, **kwargs)
        if not isinstance(result, pb.StylizeResponse | pb.ClassifyResponse | pb.SaliencyResponse):
            list(result)  # a stream: errors arrive while reading
    err: Any = info.value
    return err.code(), err.details()
