"""A small closed-loop load test of a running Atelier: Stylize over REST and over gRPC, side by side.

    python deploy/loadtest.py --image docs/samples/chelsea.jpg --style starry_night \
        --rest http://localhost:8080 --grpc localhost:50051 --concurrency 1 4 --requests 40

Each of ``concurrency`` threads sends ``requests / concurrency`` requests back to back (closed loop), after
``warmup`` unmeasured ones. Prints one markdown row per transport and concurrency: throughput, latency
percentiles, and the mean batch size the server reported (how much the micro-batcher merged). REST uses only
the standard library (``http.client``), gRPC the project's client, so it runs from the image itself too.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Call = Callable[[], int]  # one request; returns the batch size the server reported


@dataclass(frozen=True)
class Row:
    transport: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    batch_sizes: list[int]

    def markdown(self) -> str:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        return (
            f"| {self.transport} | {self.concurrency} | {self.requests} | {self.requests / self.seconds:.1f} "
            f"| {q[49]:.1f} | {q[94]:.1f} | {q[98]:.1f} | {statistics.fmean(self.batch_sizes):.2f} |"
        )


HEADER = (
    "| transport | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | mean batch |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


def rest_caller(base: str, style: str, image: bytes, params: dict[str, str]) -> Callable[[], Call]:
    url = urllib.parse.urlsplit(base)
    query = urllib.parse.urlencode({"style": style, **params})

    def make() -> Call:
        conn = http.client.HTTPConnection(url.hostname or "localhost", url.port or 80, timeout=120)

        def call() -> int:
            conn.request("POST", f"/v1/stylize?{query}", body=image, headers={"Content-Type": "image/jpeg"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"REST answered {resp.status}")
            return int(resp.getheader("X-Atelier-Batch-Size", "1"))

        return call

    return make


def grpc_caller(target: str, style: str, image: bytes, max_side: int | None) -> Callable[[], Call]:
    from service.client import AtelierClient

    def make() -> Call:
        client = AtelierClient(target)  # one channel per thread, like independent callers

        def call() -> int:
            return client.stylize(image, style, max_side=max_side).batch_size

        return call

    return make


def run(transport: str, make: Callable[[], Call], concurrency: int, total: int, warmup: int) -> Row:
    per_thread = max(1, total // concurrency)
    latencies: list[float] = []
    batches: list[int] = []
    lock = threading.Lock()
    start_line = threading.Barrier(concurrency + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            call = make()
            for _ in range(warmup):
                call()
        except BaseException as exc:
            errors.append(exc)
        start_line.wait()
        if errors:
            return
        try:
            for _ in range(per_thread):
                t0 = time.perf_counter()
                batch = call()
                dt = (time.perf_counter() - t0) * 1e3
                with lock:
                    latencies.append(dt)
                    batches.append(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{transport}: {errors[0]}")
    return Row(transport, concurrency, len(latencies), seconds, latencies, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=Path("docs/samples/chelsea.jpg"))
    parser.add_argument("--style", default="starry_night")
    parser.add_argument(
        "--max-side", type=int, default=None, help="downscale on the server (both transports)"
    )
    parser.add_argument("--rest", default="http://localhost:8080", help="REST base URL ('' to skip)")
    parser.add_argument("--grpc", default="localhost:50051", help="gRPC target ('' to skip)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--requests", type=int, default=40, help="measured requests per run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per thread")
    args = parser.parse_args()
    image = args.image.read_bytes()
    params = {"max_side": str(args.max_side)} if args.max_side else {}
    makers: list[tuple[str, Callable[[], Call]]] = []
    if args.rest:
        makers.append(("REST", rest_caller(args.rest, args.style, image, params)))
    if args.grpc:
        makers.append(("gRPC", grpc_caller(args.grpc, args.style, image, args.max_side)))
    print(HEADER)
    for concurrency in args.concurrency:
        for name, make in makers:
            print(run(name, make, concurrency, args.requests, args.warmup).markdown(), flush=True)


if __name__ == "__main__":
    main()
