"""The Open Inference Protocol's infer latency against our own REST Stylize, at 512 px, in one run.

One ``python -m service serve`` process with the shipped models (``_bench_server.py``); one client calling
in turn, interleaved so both paths see the same machine load: ``POST /v1/stylize`` (PNG in, PNG out, what
our own API costs), ``POST /v2/models/{m}/infer`` with tritonclient's HTTP client (binary tensor data, its
default) and ``ModelInfer`` with tritonclient's gRPC client. Every v2 answer is checked against the /v1
one (the same pixels). Prints p50 / p90 / mean per path and the v2 REST overhead against /v1 at p50,
against the bar of issue #21 (at most +10 %). ``docs/bench/v2.md`` holds a run.

    .venv/bin/python scripts/bench_v2.py --calls 40
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _bench_server import pick_model, server
from _bench_util import FALLBACK_CONTENT, ROOT, SHARED, load_avg, pct

from service.core.imageio import decode_image, encode_image, load_image, resize_max_side

BAR = 0.10  # issue #21: the v2 path's overhead over our own REST Stylize, at most 10 %


def square(image: np.ndarray, side: int) -> np.ndarray:
    """The centre square of ``image``, resized to ``side`` x ``side``."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize_max_side(np.ascontiguousarray(image[top : top + s, left : left + s]), side)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def versions() -> str:
    from importlib.metadata import version

    names = ("onnxruntime-gpu", "tritonclient", "grpcio", "uvicorn", "fastapi")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except Exception:
            continue
    return f"Python {platform.python_version()}, " + ", ".join(found)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--calls", type=int, default=40, help="timed calls per path (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=4, help="untimed calls per path first")
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--content", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    ap.add_argument("--note", default="", help="a line about the run's conditions (shared CPU, ...)")
    args = ap.parse_args()

    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    default = SHARED / "content/tubingen.jpg"
    photo = square(load_image(args.content or (default if default.exists() else FALLBACK_CONTENT)), args.side)
    png = encode_image(photo, "png", 90)
    batch = photo[None]
    models, model, where = pick_model(args.models_dir, Path("/tmp"))
    load_before = load_avg()
    with server(models) as proc:
        base = f"127.0.0.1:{proc.http_port}"
        http = httpx.Client(base_url=f"http://{base}", timeout=120)
        v2_http = triton_http.InferenceServerClient(base, connection_timeout=120, network_timeout=120)
        v2_grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{proc.grpc_port}")
        expected = decode_image(
            http.post(
                "/v1/stylize", params={"style": model}, content=png, headers={"Content-Type": "image/png"}
            ).content
        )

        codec_ms: list[float] = []  # /v1's server-side PNG decode + encode (Server-Timing), per call

        def v1() -> Any:
            r = http.post(
                "/v1/stylize", params={"style": model}, content=png, headers={"Content-Type": "image/png"}
            )
            r.raise_for_status()
            timing = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
            codec_ms.append(float(timing["decode"]) + float(timing["encode"]))
            return decode_image(r.content)

        def v2_rest() -> Any:
            tensor = triton_http.InferInput("IMAGE", list(batch.shape), "UINT8")
            tensor.set_data_from_numpy(batch)
            return v2_http.infer(model, [tensor]).as_numpy("STYLIZED")[0]

        def v2_grpc_call() -> Any:
            tensor = triton_grpc.InferInput("IMAGE", list(batch.shape), "UINT8")
            tensor.set_data_from_numpy(batch)
            return v2_grpc.infer(model, [tensor], client_timeout=120).as_numpy("STYLIZED")[0]

        paths: dict[str, Callable[[], Any]] = {
            "REST /v1/stylize (PNG)": v1,
            "REST /v2 infer (tritonclient http, binary)": v2_rest,
            "gRPC ModelInfer (tritonclient grpc)": v2_grpc_call,
        }
        for fn in paths.values():
            for _ in range(args.warmup):
                out = fn()
            if not np.array_equal(out, expected):
                raise SystemExit(f"{fn.__name__}: the pixels differ from /v1/stylize's")
        codec_ms.clear()
        times: dict[str, list[float]] = {name: [] for name in paths}
        names = list(paths)
        for i in range(args.calls):
            for j in range(len(names)):  # rotate the order each round: no path always runs first
                name = names[(i + j) % len(names)]
                start = time.perf_counter()
                paths[name]()
                times[name].append((time.perf_counter() - start) * 1e3)
        v2_grpc.close()
        v2_http.close()
        http.close()
    load_after = load_avg()

    ref = pct(times[names[0]], 50)
    out: list[str] = []
    say = out.append
    say(f"# v2 infer against /v1/stylize, {args.side} x {args.side} px, model `{model}`\n")
    say(f"- model: {where}; ONNX Runtime CPUExecutionProvider, server defaults otherwise")
    say(f"- versions: {versions()}")
    say(f"- machine: {machine()}; load average {load_before} before, {load_after} after")
    say(f"- {args.calls} timed calls per path after {args.warmup} warm-up calls, interleaved, one at a time")
    if args.note:
        say(f"- {args.note}")
    say("- every v2 answer checked equal to /v1/stylize's pixels\n")
    say("| path | calls | p50 ms | p90 ms | mean ms | p50 vs /v1 |")
    say("|---|---|---|---|---|---|")
    for name in names:
        t = times[name]
        ratio = pct(t, 50) / ref - 1
        say(
            f"| {name} | {len(t)} | {pct(t, 50):.1f} | {pct(t, 90):.1f} | {statistics.fmean(t):.1f} "
            f"| {ratio:+.1%} |"
        )
    # /v1 pays a PNG decode and encode on the server that raw tensors skip; without them, what is left
    # of the difference is the protocol's own cost (JSON header, bigger bodies, tritonclient's work).
    bare = [t - c for t, c in zip(times[names[0]], codec_ms, strict=True)]
    say(
        f"| /v1 less its server-side PNG decode + encode (Server-Timing) | {len(bare)} | {pct(bare, 50):.1f} "
        f"| {pct(bare, 90):.1f} | {statistics.fmean(bare):.1f} | {pct(bare, 50) / ref - 1:+.1%} |"
    )
    overhead = pct(times[names[1]], 50) / ref - 1
    strict = pct(times[names[1]], 50) / pct(bare, 50) - 1
    verdict = "within" if overhead <= BAR else "OVER"
    say(f"\nv2 REST overhead at p50: {overhead:+.1%} against /v1/stylize ({verdict} the +{BAR:.0%} bar)")
    say(f"v2 REST against /v1 without its PNG codec, at p50: {strict:+.1%}")
    text = "\n".join(out) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)
    return 0 if overhead <= BAR else 1


if __name__ == "__main__":
    raise SystemExit(main())
