"""Score one ablation run: export its checkpoint to ONNX and measure it on the content photos at 512 px.

Per photo (longer side 512, ONNX Runtime on the CPU, one thread): structure (edge correlation with the
photo), grid over photo (the render's periodic 2/4/8 px excess minus the photo's own), droplets (per mille
of the area) and the style / content distances of ``service.core.stylize.evaluate.StyleDistances`` (the
numbers the eval tables use). The measures come from ``service.core.stylize.measures`` where that package
exists; otherwise from the simple stand-ins below (the JSON says which were used).

    python scripts/score_ablation.py RUN.ckpt --style-image PAINTING --content DIR --out DIR
    python scripts/score_ablation.py --table runs/ablation      # markdown table of every score.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Measure = Callable[..., float]


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def fallback_grid(image: np.ndarray) -> float:
    """Largest log10 ratio of the row/column-averaged power at period 2 or 4 px to the median power of the
    neighbouring frequencies (a stand-in until the measures package lands)."""
    g = _grey(image)
    g = (g - g.mean()) * np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    best = 0.0
    for axis in (0, 1):
        s = (np.abs(np.fft.rfft(g, axis=axis)) ** 2).mean(axis=1 - axis)
        n = g.shape[axis]
        for period in (2, 4):
            k = round(n / period)
            lo, hi = max(1, k - n // 32), min(len(s) - 1, k + n // 32)
            ring = np.r_[s[lo : k - 1], s[k + 2 : hi]]
            if ring.size:
                best = max(best, float(np.log10(s[k - 1 : k + 2].max() / max(np.median(ring), 1e-12))))
    return best


def fallback_structure(render: np.ndarray, photo: np.ndarray) -> float:
    from scipy import ndimage

    def edges(im: np.ndarray) -> np.ndarray:
        g = ndimage.gaussian_filter(_grey(im), 3.0)
        return np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1)).ravel()

    return float(np.corrcoef(edges(render), edges(photo))[0, 1])


def measures() -> tuple[Measure, Measure, Measure | None, str]:
    try:
        from service.core.stylize.measures.droplets import droplet_score
        from service.core.stylize.measures.grid import grid_score
        from service.core.stylize.measures.structure import structure
    except ImportError:
        return fallback_structure, fallback_grid, None, "fallback (scripts/score_ablation.py)"
    return structure, lambda im: grid_score(im).score, droplet_score, "service.core.stylize.measures"


def one_style(net: Any, index: int) -> Any:
    """A multi-style net (nets/multi.py) fixed to one style: a single-input net the export and the session
    loop below treat like any other."""
    import torch

    from service.core.stylize.nets import TransformNet
    from service.core.stylize.nets.multi import one_hot

    class OneStyle(TransformNet):
        total_stride = net.total_stride

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = one_hot(index, int(net.styles), x.shape[0]).to(x)
            return self.net(x, w)

    return OneStyle()


def score(
    ckpt_path: Path,
    style_path: Path,
    content_dir: Path,
    out: Path,
    size: int = 512,
    style_index: int | None = None,
) -> dict[str, object]:
    import onnxruntime as ort
    import torch

    from service.core.backbones import get_backbone
    from service.core.imageio import load_image
    from service.core.stylize.evaluate import StyleDistances, list_images, resize_long_side
    from service.core.stylize.export import export_onnx
    from service.core.stylize.train import load_checkpoint, net_from_checkpoint

    torch.set_num_threads(1)
    ckpt: dict[str, Any]
    if ckpt_path.suffix == ".onnx":  # a shipped model, scored as the reference
        ckpt = {"name": ckpt_path.stem, "arch": ckpt_path.stem.split(".")[-1], "step": 0}
        onnx_path = ckpt_path
    else:
        ckpt = load_checkpoint(ckpt_path)
        net = net_from_checkpoint(ckpt)
        if style_index is not None:  # one style of a multi-style net
            net = one_style(net, style_index)
            ckpt = {**ckpt, "name": f"{ckpt.get('name')}[{style_index}]"}
        onnx_path = export_onnx(net, out / "net.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    structure, grid, droplets, source = measures()
    painting = load_image(style_path)
    distances = StyleDistances(get_backbone("efficientnet_lite0"), painting, size)
    rows = []
    for name, path in sorted(list_images(content_dir).items()):
        photo = resize_long_side(load_image(path), size)
        x = photo.astype(np.float32).transpose(2, 0, 1)[None]
        t = time.perf_counter()
        y = session.run(["output"], {"input": x})[0]
        ms = (time.perf_counter() - t) * 1000
        render = np.clip(np.rint(y[0].transpose(1, 2, 0)), 0, 255).astype(np.uint8)
        (style_taps, content_d) = distances(photo, render)[0]
        rows.append(
            {
                "photo": name,
                "structure": structure(render, photo),
                "grid_over_photo": grid(render) - grid(photo),
                "droplets": droplets(render, photo, painting) if droplets else float("nan"),
                "style": float(np.mean(style_taps)),
                "content": content_d,
                "ms": ms,
            }
        )
        if name in ("tubingen", "golden_gate"):
            from service.core.imageio import save_image

            save_image(render, out / f"{name}.png")
    keys = ("structure", "grid_over_photo", "droplets", "style", "content", "ms")
    result: dict[str, object] = {
        "run": ckpt.get("name"),
        "arch": ckpt["arch"],
        "steps": ckpt["step"],
        "cpu_seconds": round(float(ckpt.get("cpu_seconds", 0.0)), 1),
        "config": ckpt.get("config", {}),
        "measures": source,
        "style_floor": distances.floor,
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        "median": {k: float(np.median([r[k] for r in rows])) for k in keys},
        "photos": rows,
    }
    (out / "score.json").write_text(json.dumps(result, indent=1))
    return result


def table(folder: Path) -> str:
    lines = [
        "| run | arch | steps | CPU s | structure | grid over photo | droplets (per mille) | style | content |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path in sorted(folder.glob("*/score.json")):
        r = json.loads(path.read_text())
        m = r["mean"]
        lines.append(
            f"| {r['run']} | {r['arch']} | {r['steps']} | {r['cpu_seconds']:.0f} | {m['structure']:.2f} | "
            f"{m['grid_over_photo']:+.2f} | {m['droplets']:.2f} | {m['style']:.3g} | {m['content']:.3g} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, nargs="?", help="a .ckpt, or a shipped .onnx (reference)")
    p.add_argument("--style-image", type=Path)
    p.add_argument("--content", type=Path, default=Path("/work/shared/data/content"))
    p.add_argument("--out", type=Path)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--style-index", type=int, help="a multi-style checkpoint: the style to score (0-based)")
    p.add_argument(
        "--table", type=Path, help="print a markdown table of the score.json files under this folder"
    )
    args = p.parse_args()
    if args.table:
        print(table(args.table))
        return 0
    if args.checkpoint is None or args.style_image is None:
        p.error("a checkpoint and --style-image are needed")
    out = args.out or args.checkpoint.parent
    out.mkdir(parents=True, exist_ok=True)
    r = score(args.checkpoint, args.style_image, args.content, out, args.size, args.style_index)
    print(json.dumps({"run": r["run"], "steps": r["steps"], **r["mean"]}))  # type: ignore[dict-item]
    return 0


if __name__ == "__main__":
    sys.exit(main())
