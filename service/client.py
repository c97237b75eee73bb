"""A typed Python client for the Atelier gRPC API.

    from service.client import AtelierClient

    with AtelierClient("localhost:50051") as client:
        print([s.name for s in client.list_styles()])
        client.stylize_file("photo.jpg", "photo.starry.png", style="starry_night")
        client.stylize_file("photo.jpg", "photo.mine.png", style_image="my_painting.jpg")  # any painting
        client.stylize_file("photo.jpg", "photo.mix.png", blend="starry_night:0.7,the_scream:0.3")
        for update in client.gatys("photo.jpg", ["painting.jpg"], {"size": 384, "steps": 100}):
            print(update.step, update.total, update.losses)
        update.save("render.png")  # the last update carries the final image

Styles (``stylize``, ``stylize_file``, ``list_styles``, with blends and paint by region) are in
``service.client_stylize``, embeddings, galleries and attacks (``embed``, ``add_to_gallery``,
``search_gallery``, ``list_galleries``, ``attack``) in ``service.client_features``, jobs by id
(``watch_job``, ``cancel_job``) in ``service.client_jobs``, all mixed into the same client. Errors arrive as ``AtelierClientError``: the
gRPC status code, the server's message, and for a full queue the server's retry hint (``retry_after_s``).

``api_key="..."`` sends ``authorization: Bearer ...`` metadata on every call; ``tls_ca="ca.pem"`` opens a
TLS channel that trusts that CA (PEM) instead of a plaintext one (a server started with ``ATELIER_TLS_CERT``
and ``ATELIER_TLS_KEY``); ``tls_cert`` + ``tls_key`` add a client certificate, for a server that requires
one (``ATELIER_TLS_CLIENT_CA``, mTLS). Without ``tls_ca`` a client certificate uses the system's CAs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from service.api.v1 import atelier_pb2 as pb
from service.api.v1 import atelier_pb2_grpc as pb_grpc
from service.client_features import AttackOutcome, FeatureCalls, ImageInput, attack_outcome
from service.client_features import image_bytes as _read
from service.client_features import options_struct as _struct
from service.client_jobs import JobCalls, JobStatus  # noqa: F401  (JobStatus: cancel_job's answer, re-exported)
from service.client_stylize import StyleCalls, Stylized  # noqa: F401  (Stylized: stylize's answer, re-exported)
from service.client_stylize import image_format as _format

MiB = 1024 * 1024
_OUTPUTS = {
    "overlay": pb.SALIENCY_OUTPUT_OVERLAY,
    "heatmap": pb.SALIENCY_OUTPUT_HEATMAP,
    "float32": pb.SALIENCY_OUTPUT_FLOAT32,
}


class AtelierClientError(Exception):
    """A failed call: ``code`` (grpc.StatusCode), the server's ``message``, and ``retry_after_s`` if any."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    @classmethod
    def from_rpc(cls, err: grpc.RpcError) -> AtelierClientError:
        retry = None
        call: Any = err  # the RpcError raised by a call is also a grpc.Call
        trailers: Any = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
        for key, value in trailers or ():
            if key == "retry-after-s":
                retry = float(value)
        return cls(call.code(), call.details() or "", retry)


@dataclass(frozen=True)
class RenderUpdate:
    """One event of a streaming render. The last one of a successful run has ``image`` set."""

    job_id: str
    state: str
    step: int = 0
    total: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    eta_s: float | None = None
    stage: str = ""
    preview: bytes | None = None  # JPEG
    image: bytes | None = None
    content_type: str = ""
    width: int = 0
    height: int = 0
    attack: AttackOutcome | None = None  # the final update of an Attack

    @property
    def done(self) -> bool:
        return self.image is not None

    def save(self, path: str | Path) -> Path:
        if self.image is None:
            raise ValueError("this update carries no final image")
        p = Path(path)
        p.write_bytes(self.image)
        return p


class RenderStream:
    """Iterator over a render's updates; ``cancel()`` stops the render on the server and frees its worker."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[RenderUpdate]:
        try:
            for event in self._call:
                yield _update(event)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED and self._call.cancelled():
                return
            raise AtelierClientError.from_rpc(err) from None

    def cancel(self) -> None:
        self._call.cancel()

    def result(self) -> RenderUpdate:
        """Consume the stream and return the final update (with the image)."""
        last: RenderUpdate | None = None
        for update in self:
            last = update
        if last is None or last.image is None:
            raise AtelierClientError(grpc.StatusCode.CANCELLED, "the render ended without a result")
        return last


def _update(event: pb.RenderEvent) -> RenderUpdate:
    which = event.WhichOneof("event")
    if which == "result":
        r = event.result
        return RenderUpdate(
            event.job_id,
            event.state,
            image=r.image,
            content_type=r.content_type,
            width=r.width,
            height=r.height,
            attack=attack_outcome(r.attack) if r.HasField("attack") else None,
        )
    if which == "progress":
        p = event.progress
        return RenderUpdate(
            event.job_id,
            event.state,
            step=p.step,
            total=p.total,
            losses=dict(p.losses),
            elapsed_s=p.elapsed_s,
            eta_s=p.eta_s if p.HasField("eta_s") else None,
            stage=p.stage,
            preview=p.preview or None,
        )
    return RenderUpdate(event.job_id, event.state)


class AtelierClient(StyleCalls, FeatureCalls, JobCalls):
    """Blocking client over one channel. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        target: str = "localhost:50051",
        timeout: float | None = 120.0,
        max_message_bytes: int = 32 * MiB,
        api_key: str | None = None,
        tls_ca: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        self.timeout = timeout
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("a client certificate needs both tls_cert and tls_key")
        if tls_ca is not None or tls_cert is not None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=Path(tls_ca).read_bytes() if tls_ca is not None else None,
                private_key=Path(tls_key).read_bytes() if tls_key is not None else None,
                certificate_chain=Path(tls_cert).read_bytes() if tls_cert is not None else None,
            )
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        # Plain metadata rather than grpc call credentials: those are refused on a plaintext channel, and
        # a key over plaintext is still what a local or proxied (TLS-terminating) deployment uses.
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {api_key}"),) if api_key else ()
        )
        self.stub = pb_grpc.AtelierStub(self.channel)

    def __enter__(self) -> AtelierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the channel connects and the server's health check says SERVING."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        grpc.channel_ready_future(self.channel).result(timeout=timeout)
        health = health_pb2_grpc.HealthStub(self.channel)
        responses = health.Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout, metadata=self.metadata
        )
        try:
            for reply in responses:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError as err:
            raise AtelierClientError.from_rpc(err) from None
        finally:
            responses.cancel()

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """The server's health status (``SERVING``, ``NOT_SERVING``, ...) from the standard health check."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = self._unary(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(
                request, timeout=timeout if timeout is not None else self.timeout, metadata=self.metadata
            )
        except grpc.RpcError as err:
            raise AtelierClientError.from_rpc(err) from None

    def _render_stream(self, call: Any) -> RenderStream:
        return RenderStream(call)

    def classify(
        self, image: ImageInput, top_k: int = 5, backbone: str = "", timeout: float | None = None
    ) -> list[pb.Prediction]:
        req = pb.ClassifyRequest(image=_read(image), top_k=top_k, backbone=backbone)
        return list(self._unary(self.stub.Classify, req, timeout).predictions)

    def saliency(
        self,
        image: ImageInput,
        method: str = "gradcam",
        target: int | str | None = None,
        output: str = "overlay",
        params: Mapping[str, Any] | None = None,
        top_k: int = 5,
        backbone: str = "",
        timeout: float | None = None,
    ) -> pb.SaliencyResponse:
        """A saliency map: PNG for ``overlay`` / ``heatmap``, raw little-endian float32 for ``float32``."""
        if output not in _OUTPUTS:
            raise ValueError(f"unsupported saliency output {output!r}; use one of {', '.join(_OUTPUTS)}")
        req = pb.SaliencyRequest(
            image=_read(image),
            method=method,
            output=_OUTPUTS[output],
            params=_struct(params),
            top_k=top_k,
            backbone=backbone,
        )
        if isinstance(target, int):
            req.target_index = target
        elif isinstance(target, str):
            req.target_label = target
        return self._unary(self.stub.Saliency, req, timeout)

    def gatys(
        self,
        content: ImageInput,
        styles: list[ImageInput],
        options: Mapping[str, Any] | None = None,
        fmt: str = "png",
        quality: int = 90,
        backbone: str = "",
        timeout: float | None = None,
    ) -> RenderStream:
        """Start a Gatys render; iterate the result for progress, the last update holds the image."""
        req = pb.GatysRequest(
            content=_read(content),
            styles=[_read(s) for s in styles],
            options=_struct(options),
            format=_format(fmt),
            quality=quality,
            backbone=backbone,
        )
        return RenderStream(self.stub.Gatys(req, timeout=timeout, metadata=self.metadata))

    def deepdream(
        self,
        image: ImageInput,
        options: Mapping[str, Any] | None = None,
        fmt: str = "png",
        quality: int = 90,
        backbone: str = "",
        guide: ImageInput | None = None,
        timeout: float | None = None,
    ) -> RenderStream:
        """Start a DeepDream render; iterate the result for progress, the last update holds the image."""
        req = pb.DeepDreamRequest(
            image=_read(image),
            options=_struct(options),
            format=_format(fmt),
            quality=quality,
            backbone=backbone,
            guide=_read(guide) if guide is not None else b"",
        )
        return RenderStream(self.stub.DeepDream(req, timeout=timeout, metadata=self.metadata))
