"""Does a blend of two styles of a multi-style net lie between them? (issue #19's blend measure)

For each content photo at 512 px, the multi net renders style A, style B and blends of the two; each render's
style distance (``StyleDistances``, the eval tables' measure) is taken to painting A and to painting B. A
blend's distance to each painting should fall between those of the two pure styles, and move monotonically
with the weight. Prints the medians over the photos and how many photos hold the "between" property.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_blend.py --a starry_night \\
        --a-painting ../shared/data/styles/van_gogh_starry_night.jpg --b the_scream \\
        --b-painting ../shared/data/styles/munch_the_scream.jpg --content ../shared/data/content
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import torch

    from service.core.backbones import get_backbone
    from service.core.imageio import load_image
    from service.core.stylize.engine import StyleEngine, StylizeOptions
    from service.core.stylize.evaluate import StyleDistances, list_images, resize_long_side
    from service.core.stylize.manifest import read_manifest

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--net", default="multi")
    p.add_argument("--a", required=True)
    p.add_argument("--a-painting", type=Path, required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--b-painting", type=Path, required=True)
    p.add_argument("--content", type=Path, required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--weights", type=float, nargs="*", default=[0.25, 0.5, 0.75], help="weights of A")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    engine = StyleEngine.load(
        args.models, providers=["CPUExecutionProvider"], intra_threads=1, names=[args.net]
    )
    order = list(next(e.styles or () for e in read_manifest(args.models) if e.name == args.net))
    ia, ib = order.index(args.a), order.index(args.b)
    backbone = get_backbone("efficientnet_lite0")
    dist = {
        k: StyleDistances(backbone, load_image(path), args.size)
        for k, path in (("A", args.a_painting), ("B", args.b_painting))
    }
    mix = [1.0, *sorted(args.weights, reverse=True), 0.0]  # A's weight, pure A first
    table: dict[str, list[list[float]]] = {"A": [], "B": []}
    for _, path in sorted(list_images(args.content).items()):
        photo = resize_long_side(load_image(path), args.size)
        rows: dict[str, list[float]] = {"A": [], "B": []}
        for wa in mix:
            w = np.zeros(len(order), np.float32)
            w[ia], w[ib] = wa, 1.0 - wa
            render = engine.stylize(args.net, photo, StylizeOptions(), weights=w)
            for k in rows:
                rows[k].append(float(np.mean(dist[k].style_by_tap(render))))
        for k in rows:
            table[k].append(rows[k])
    print(
        f"style distance (median over {len(table['A'])} photos) of renders with weight w on {args.a}, 1-w on {args.b}"
    )
    print(
        "| to painting | "
        + " | ".join(f"w={wa:g}" for wa in mix)
        + " | photos where every blend lies between the pure styles |"
    )
    print("|---|" + "---:|" * len(mix) + "---:|")
    for k, name in (("A", args.a), ("B", args.b)):
        arr = np.array(table[k])
        lo, hi = np.minimum(arr[:, 0], arr[:, -1]), np.maximum(arr[:, 0], arr[:, -1])
        between = int(np.sum(np.all((arr[:, 1:-1] >= lo[:, None]) & (arr[:, 1:-1] <= hi[:, None]), axis=1)))
        med = np.median(arr, axis=0)
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in med) + f" | {between} / {len(arr)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
