#!/usr/bin/env python
"""Milliseconds per saliency map at 224 px, batch 1 and batch 16 (per-map time = batch time / batch).

Times ``service.core.saliency.attribute`` plus the [0, 1] normalisation on a ready (B, 3, 224, 224) batch
with given targets: the method's own forward/backward passes, excluding image decoding, resizing and the
top-k classification ``explain`` adds. Prints a markdown table and writes it to ``--out``.

Runs where only torch/numpy/PIL are installed (no pydantic/grpc): it imports service.core only.
``--random-weights`` builds the net without its weights file (timings do not depend on the weights).

    .venv/bin/python scripts/bench_saliency.py --out docs/bench/saliency_cpu.md
    python scripts/bench_saliency.py --device cuda --random-weights --out saliency_gpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.core.backbones import get_backbone
from service.core.backbones.base import Backbone
from service.core.saliency import METHODS, attribute, get_method, normalise

# Reduced counts for the four sampling methods so the whole table runs in minutes on a shared CPU; their
# cost is linear in the count (one forward, or forward + backward, per sample/step/window/mask), so the
# script also prints the per-map time scaled to explain()'s defaults (DEFAULTS) in its own column.
SETTINGS: dict[str, dict[str, int]] = {
    "smoothgrad": {"samples": 4},
    "integrated_gradients": {"steps": 4},
    "occlusion": {"window": 112, "stride": 56},  # 3 x 3 = 9 windows at 224 px
    "rise": {"masks": 16},
}
DEFAULT_COUNTS: dict[str, float] = {  # defaults / bench setting, per map
    "smoothgrad": 16 / 4,
    "integrated_gradients": 32 / 4,
    "occlusion": 169 / 9,  # window 32, stride 16: 13 x 13 windows at 224 px
    "rise": 1000 / 16,
}


def load_net(name: str, device: str, random_weights: bool) -> Backbone:
    if not random_weights:
        return get_backbone(name, device)
    if name == "efficientnet_lite0":
        from service.core.backbones.efficientnet_lite0 import EfficientNetLite0

        net: Backbone = EfficientNetLite0()
    else:
        from service.core.backbones.vgg import VGG

        net = VGG(name)
    return net.eval().requires_grad_(False).to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_method(
    backbone: Backbone,
    method: str,
    batch: int,
    size: int,
    device: str,
    min_time: float,
    max_repeats: int,
    warmup: bool = True,
) -> float:
    """Median seconds for one batch (after one untimed warm-up run unless ``warmup`` is False)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((batch, 3, size, size), generator=gen).to(device)
    targets = torch.randint(0, 1000, (batch,), generator=gen).to(device)
    params = SETTINGS.get(method)
    m = get_method(method)

    def run() -> None:
        normalise(attribute(backbone, x, method, targets, params).detach(), m)

    if warmup:
        run()
        sync(device)
    times: list[float] = []
    while len(times) < max_repeats and (not times or sum(times) < min_time):
        t0 = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str, threads: int) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    if device.startswith("cuda"):
        where = torch.cuda.get_device_name(0)
    else:
        where = f"{cpu_name()}, {os.cpu_count()} cores, {threads} torch threads"
    return (
        f"{where}; torch {torch.__version__}, Python {platform.python_version()}; "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) at the start"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--random-weights", action="store_true", help="skip the weights file (same timings)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--min-time", type=float, default=2.0, help="repeat until this many seconds (median)")
    ap.add_argument("--max-repeats", type=int, default=5)
    ap.add_argument("--no-warmup", action="store_true", help="skip the per-method warm-up run")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    backbone = load_net(args.backbone, args.device, args.random_weights)
    batches = [int(b) for b in args.batches.split(",")]
    header = describe(args.device, torch.get_num_threads())
    cols = " | ".join(f"batch {b} (ms/map)" for b in batches)
    cols += " | " + " | ".join(f"batch {b}, scaled to defaults" for b in batches)
    for b in batches:  # one shared warm-up per batch size (allocator, kernels)
        time_method(backbone, "gradient", b, args.size, args.device, 0.0, 1)
    lines = [
        f"Saliency speed, {args.backbone} at {args.size}x{args.size}, device {args.device}: {header}.",
        "",
        f"| method | settings | {cols} |",
        "|---|---|" + "---:|" * (2 * len(batches)),
    ]
    for method in args.methods.split(","):
        cells, scaled = [], []
        for b in batches:
            seconds = time_method(
                backbone,
                method,
                b,
                args.size,
                args.device,
                args.min_time,
                args.max_repeats,
                not args.no_warmup,
            )
            cells.append(f"{1000 * seconds / b:.1f}")
            scaled.append(f"{1000 * seconds / b * DEFAULT_COUNTS.get(method, 1.0):.0f}")
            print(f"{method} batch {b}: {1000 * seconds / b:.1f} ms/map", file=sys.stderr, flush=True)
        settings = ", ".join(f"{k}={v}" for k, v in (SETTINGS.get(method) or {}).items()) or "-"
        lines.append(f"| {method} | {settings} | " + " | ".join(cells + scaled) + " |")
    end = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines.append("")
    lines.append(f"Load average at the end: {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f}.")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
