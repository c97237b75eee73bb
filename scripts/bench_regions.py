"""What painting by region costs on top of a render: the mask (uploaded, or the Grad-CAM saliency map) and
the feathered composite, beside one run of a shipped fast style, at the photo sizes of the API.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_regions.py [--style starry_night] [--repeats 5]

Prints a markdown table of medians (ms) per size: the style's ONNX Runtime run (one thread), the
saliency mask (EfficientNet-Lite0 Grad-CAM at 224 px on the shorter side, then resized), reading and
fitting a PNG mask, and the feathered composite. Runs on any machine: the photo is scikit-image's cat.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm: first-call allocations and lazy imports are not the steady cost
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    import torch
    from PIL import Image
    from skimage import data

    from service.core.backbones import get_backbone
    from service.core.imageio import ImageLimits, resize_max_side
    from service.core.stylize.engine import StyleEngine
    from service.core.stylize.regions import composite, decode_mask, fit_mask, saliency_mask

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    engine = StyleEngine.load(
        args.models_dir,
        providers=("CPUExecutionProvider",),
        intra_threads=1,
        warmup=False,
        names=[args.style],
    )
    net = get_backbone("efficientnet_lite0", "cpu")
    print(f"| side | {args.style} run | saliency mask | PNG mask read + fit | feathered composite |")
    print("|---|---|---|---|---|")
    for side in args.sizes:
        photo = resize_max_side(
            np.asarray(Image.fromarray(data.chelsea()).resize((side, side * 2 // 3))), side
        )
        h, w = photo.shape[:2]
        fg = engine.stylize(args.style, photo)
        mask = np.zeros((h, w), np.uint8)
        mask[:, : w // 2] = 255
        buf = io.BytesIO()
        Image.fromarray(mask).save(buf, "PNG")
        png = buf.getvalue()
        fitted = fit_mask(decode_mask(png, ImageLimits()), h, w)
        row = [
            median_ms(lambda: engine.stylize(args.style, photo), args.repeats),  # noqa: B023
            median_ms(lambda: saliency_mask(net, photo), args.repeats),  # noqa: B023
            median_ms(lambda: fit_mask(decode_mask(png, ImageLimits()), h, w), args.repeats),  # noqa: B023
            median_ms(lambda: composite(fg, photo, fitted), args.repeats),  # noqa: B023
        ]
        print(f"| {w}x{h} | " + " | ".join(f"{v:.0f} ms" for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
