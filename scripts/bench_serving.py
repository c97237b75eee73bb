#!/usr/bin/env python
"""Serving benchmarks: what the gRPC service adds to a stylize call, and throughput under concurrency.

1. Overhead: median end-to-end gRPC ``Stylize`` latency for a 512x512 JPEG (output JPEG and PNG) against
   ``StyleEngine.stylize`` called in this process on the same decoded image, with ``DataPlane.stylize``
   in this process (bytes in, bytes out, no transport) in between to separate the data plane's share from
   the transport's. The calls alternate (engine, plane, gRPC JPEG, gRPC PNG, ...) so drifting machine load
   hits all of them alike. The server's own timing breakdown (decode, queue, inference, encode) is
   reported beside it.
2. Throughput and p50/p99 latency with 1, 4 and 16 concurrent clients (each a thread with its own channel,
   sending its next request when the previous one returns) at 256x256, with micro-batching off
   (``ATELIER_BATCH_MAX_DELAY_MS=0``) and on (the default 5 ms window, batches of up to 8), and the mean
   batch size read from the server's ``atelier_batch_size`` histogram.

The server is a real ``python -m service serve`` process on 127.0.0.1 (ports chosen by the OS). The style
model is the first ``mobile`` model of ``models/manifest.json``; without one, the mobile net is built with
random weights and exported like the shipped models (its speed does not depend on the weights).

    python scripts/bench_serving.py --out docs/bench/serving_cpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from _bench_server import ServerProcess, pick_model, server  # noqa: E402  (scripts/, this folder)
from _bench_util import pct  # noqa: E402

from service.api.v1 import atelier_pb2 as pb  # noqa: E402
from service.api.v1 import atelier_pb2_grpc as pb_grpc  # noqa: E402
from service.client import AtelierClient  # noqa: E402
from service.core.imageio import decode_image, encode_image  # noqa: E402


def bench_overhead(models: Path, name: str, runs: int) -> list[str]:
    import asyncio

    from skimage import data

    from service.core.stylize.engine import StyleEngine, StylizeOptions
    from service.server.plane.config import PlaneConfig
    from service.server.plane.dataplane import DataPlane
    from service.settings import Settings

    jpeg = encode_image(data.astronaut(), "jpeg", 90)  # 512x512
    image = decode_image(jpeg)
    opts = StylizeOptions(max_side=4096)
    times: dict[str, list[float]] = {"engine": [], "plane": [], "jpeg": [], "png": []}
    parts: dict[str, dict[str, list[float]]] = {"jpeg": {}, "png": {}}
    # The data plane in this process isolates decode/encode and the executors from the gRPC transport.
    loop = asyncio.new_event_loop()
    settings = Settings(
        _env_file=None, models_dir=models, ort_providers=["CPUExecutionProvider"], device="cpu"
    )
    plane = DataPlane(PlaneConfig.from_settings(settings))
    loop.run_until_complete(plane.start())
    with (
        server(models) as srv,
        StyleEngine.load(models, providers=("CPUExecutionProvider",)) as engine,
        AtelierClient(f"127.0.0.1:{srv.grpc_port}") as client,
    ):
        for i in range(runs + 3):
            t0 = time.perf_counter()
            engine.stylize(name, image, opts)
            t1 = time.perf_counter()
            loop.run_until_complete(plane.stylize(jpeg, name, fmt="jpeg"))
            t2 = time.perf_counter()
            as_jpeg = client.stylize(jpeg, name, fmt="jpeg")
            t3 = time.perf_counter()
            as_png = client.stylize(jpeg, name, fmt="png")
            t4 = time.perf_counter()
            if i < 3:
                continue  # warm-up
            times["engine"].append(t1 - t0)
            times["plane"].append(t2 - t1)
            times["jpeg"].append(t3 - t2)
            times["png"].append(t4 - t3)
            for fmt, reply in (("jpeg", as_jpeg), ("png", as_png)):
                for k, v in reply.timings_ms.items():
                    parts[fmt].setdefault(k, []).append(v)
    loop.run_until_complete(plane.close(1.0))
    loop.close()
    base = statistics.median(times["engine"]) * 1e3
    rows = [
        "| path | median ms | vs in-process | min ms |",
        "|---|---:|---:|---:|",
        f"| `StyleEngine.stylize` in process (decoded image in, array out) | {base:.1f} | - | "
        f"{min(times['engine']) * 1e3:.1f} |",
    ]
    for key, label in (
        ("plane", "`DataPlane.stylize` in process (JPEG bytes in, JPEG bytes out, no transport)"),
        ("jpeg", "gRPC `Stylize`, JPEG in, JPEG out"),
        ("png", "gRPC `Stylize`, JPEG in, PNG out"),
    ):
        med = statistics.median(times[key]) * 1e3
        rows.append(
            f"| {label} | {med:.1f} | {100 * (med - base) / base:+.1f} % | {min(times[key]) * 1e3:.1f} |"
        )
    rows += [
        "",
        "Server-side timings of the same calls, median ms (encode includes the strength/colour step):",
        "",
    ]
    rows += [
        "| output | decode | queue | inference | encode | server total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for fmt, p in parts.items():
        keys = ("decode", "queue", "inference", "encode", "total")
        rows.append(f"| {fmt} | " + " | ".join(f"{statistics.median(p[k]):.1f}" for k in keys) + " |")
    return rows


def _client_loop(
    target: str,
    request: pb.StylizeRequest,
    n: int,
    out: list[float],
    warm: threading.Barrier,
    go: threading.Barrier,
) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.AtelierStub(channel)
        stub.Stylize(request, timeout=120)  # connect and warm this channel
        warm.wait()  # all clients warm: the main thread reads the metrics baseline
        go.wait()
        for _ in range(n):
            t0 = time.perf_counter()
            stub.Stylize(request, timeout=120)
            out.append(time.perf_counter() - t0)


def _cell(srv: ServerProcess, name: str, request: pb.StylizeRequest, clients: int, total: int) -> list[float]:
    """One (server, concurrency) cell: [throughput, p50 ms, p99 ms, mean batch, requests]."""
    per = max(2, total // clients)
    lat: list[list[float]] = [[] for _ in range(clients)]
    warm, go = threading.Barrier(clients + 1), threading.Barrier(clients + 1)
    target = f"127.0.0.1:{srv.grpc_port}"
    threads = [
        threading.Thread(target=_client_loop, args=(target, request, per, lat[i], warm, go))
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    warm.wait()
    sum0, count0 = srv.batch_stats(name)
    go.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    sum1, count1 = srv.batch_stats(name)
    flat = [x * 1e3 for xs in lat for x in xs]
    batch = (sum1 - sum0) / max(count1 - count0, 1)
    return [len(flat) / wall, pct(flat, 50), pct(flat, 99), batch, len(flat)]


Cells = dict[tuple[str, int], list[float]]
BATCHING = {"0": "off", "5": "on (5 ms, max 8)"}


def bench_throughput(models: Path, name: str, total: int) -> tuple[list[str], Cells]:
    """Both servers run side by side (one idle while the other is measured) and the cells alternate
    between them, so load that drifts during the run hits batching off and on alike."""
    from skimage import data

    photo = encode_image(np.ascontiguousarray(data.astronaut()[::2, ::2]), "jpeg", 90)  # 256x256
    request = pb.StylizeRequest(image=photo, style=name, format=pb.IMAGE_FORMAT_JPEG)
    labels = BATCHING
    results: Cells = {}
    with (
        server(models, ATELIER_BATCH_MAX_DELAY_MS="0") as off,
        server(models, ATELIER_BATCH_MAX_DELAY_MS="5", ATELIER_BATCH_MAX_SIZE="8") as on,
    ):
        for clients in (1, 4, 16):
            for delay, srv in (("0", off), ("5", on)):
                results[(delay, clients)] = _cell(srv, name, request, clients, total)
                print(labels[delay], clients, [round(x, 1) for x in results[(delay, clients)]], flush=True)
    rows = [
        "| batching | clients | requests | throughput (img/s) | p50 ms | p99 ms | mean batch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (delay, clients), (tput, p50, p99, batch, n) in sorted(results.items()):
        rows.append(
            f"| {labels[delay]} | {clients} | {n:.0f} | {tput:.1f} | {p50:.1f} | {p99:.1f} | {batch:.2f} |"
        )
    return rows, results


def plot(results: Cells, path: Path) -> None:
    """Throughput and p50/p99 latency against the number of clients, batching off and on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(10, 3.8))
    for delay, label in BATCHING.items():
        xs = sorted(c for d, c in results if d == delay)
        cells = [results[(delay, c)] for c in xs]
        ax_t.plot(xs, [c[0] for c in cells], marker="o", label=f"batching {label}")
        line = ax_l.plot(xs, [c[1] for c in cells], marker="o", label=f"p50, batching {label}")[0]
        ax_l.plot(xs, [c[2] for c in cells], marker="x", linestyle="--", color=line.get_color(), label="p99")
    for ax, title, unit in ((ax_t, "throughput", "images / s"), (ax_l, "latency", "ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 4, 16], ["1", "4", "16"])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(unit)
        ax.set_title(f"Stylize 256x256: {title}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_t.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bench_batch_cost(models: Path, name: str, reps: int = 5) -> list[str]:
    """Per-image time of one ONNX Runtime run by batch size at 256x256: whether batching can pay here."""
    from service.core.stylize.engine import StyleEngine

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    rows = ["| batch | run ms (median) | per image ms |", "|---:|---:|---:|"]
    with StyleEngine.load(models, providers=("CPUExecutionProvider",)) as engine:
        for size in (1, 2, 4, 8):
            batch = [image] * size
            engine.run_batch(name, batch)  # warm-up at this batch size
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                engine.run_batch(name, batch)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times) * 1e3
            rows.append(f"| {size} | {med:.1f} | {med / size:.1f} |")
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime
    import torch

    return (
        f"{os.cpu_count()}-core {cpu}, Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, "
        f"torch {torch.__version__}, grpcio {grpc.__version__}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument(
        "--runs", type=int, default=30, help="overhead: measured calls per path (after 3 warm-up)"
    )
    ap.add_argument(
        "--requests", type=int, default=64, help="throughput: requests per (batching, clients) cell"
    )
    ap.add_argument("--out", type=Path, default=None, help="write the markdown tables here too")
    ap.add_argument(
        "--batch-cost-only", action="store_true", help="print only the batch-size table (no server)"
    )
    args = ap.parse_args()
    if args.batch_cost_only:
        with tempfile.TemporaryDirectory() as tmp:
            models, name, origin = pick_model(args.models_dir, Path(tmp))
            print(f"{origin}, load average {os.getloadavg()[0]:.1f}")
            print("\n".join(bench_batch_cost(models, name)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        models, name, origin = pick_model(args.models_dir, Path(tmp))
        load0 = os.getloadavg()
        overhead = bench_overhead(models, name, args.runs)
        print("\n".join(overhead), flush=True)
        load1 = os.getloadavg()
        throughput, cells = bench_throughput(models, name, args.requests)
        batch_cost = bench_batch_cost(models, name)
        load2 = os.getloadavg()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = "\n".join(
        [
            "# Serving benchmark (CPU)",
            "",
            f"Machine: {machine()}. Model: {origin}. Server: `python -m service serve` on 127.0.0.1 with the",
            "CPU execution provider and default settings unless stated; clients in a separate process, over loopback.",
            f"Run {stamp} by `python scripts/bench_serving.py`; 1-minute load average "
            f"{load0[0]:.1f} before, {load1[0]:.1f} between the parts, {load2[0]:.1f} after "
            "(the CPU was shared with other work, so absolute numbers are noisy).",
            "",
            f"## Overhead of the service at 512x512 ({args.runs} alternating calls per path, median)",
            "",
            *overhead,
            "",
            f"## Throughput and latency at 256x256 (about {args.requests} requests per row)",
            "",
            *throughput,
            "",
            "p99 over so few requests is close to the maximum; it shows the tail, not a stable percentile.",
            "",
            "## One ONNX Runtime run by batch size (256x256, in process)",
            "",
            *batch_cost,
            "",
            *(
                [f"![throughput and latency by concurrency]({args.out.with_suffix('.png').name})", ""]
                if args.out
                else []
            ),
        ]
    )
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        plot(cells, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
