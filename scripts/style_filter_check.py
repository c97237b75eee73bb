"""How much of the fast-style "style distance" is the painting's resampling filter.

The evaluation (``StyleDistances``, ``atelier eval-style``, ``scripts/score_ablation.py``) builds its Gram
targets from the painting resized to 512 px with PIL; training (``train.style_target``) and the Gatys
renders build theirs with torch's antialiased bilinear. The two 512 px paintings look the same, but Lite0's
deep expand taps tell them apart. This prints, per model and photo (512 px renders), the mean style
distance against each target, with the per-tap split, and the distance between the two paintings themselves
(the evaluation's "floor").

    .venv/bin/python scripts/style_filter_check.py --painting ../shared/data/styles/van_gogh_starry_night.jpg \
        --content ../shared/data/content models/starry_night.mobile2.onnx runs/long_lap/starry_night/stage_7200/starry_night.ckpt
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.core.backbones import get_backbone  # noqa: E402
from service.core.imageio import load_image  # noqa: E402
from service.core.render.losses import normalized_style_loss  # noqa: E402
from service.core.stylize.evaluate import StyleDistances, list_images, resize_long_side  # noqa: E402
from service.core.stylize.losses import gram_matrix  # noqa: E402
from service.core.stylize.train import style_target  # noqa: E402


def renderer(path: Path):  # type: ignore[no-untyped-def]
    """A function (H, W, 3) uint8 -> (H, W, 3) uint8 for an .onnx model or a training checkpoint."""
    import onnxruntime as ort

    from service.core.stylize.export import export_onnx
    from service.core.stylize.train import load_checkpoint, net_from_checkpoint

    onnx_path = path
    if path.suffix != ".onnx":
        onnx_path = export_onnx(
            net_from_checkpoint(load_checkpoint(path)), Path("/tmp") / f"{path.stem}.check.onnx"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def run(photo: np.ndarray) -> np.ndarray:
        y = session.run(["output"], {"input": photo.astype(np.float32).transpose(2, 0, 1)[None]})[0]
        return np.clip(np.rint(y[0].transpose(1, 2, 0)), 0, 255).astype(np.uint8)

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--painting", type=Path, required=True)
    p.add_argument("--content", type=Path, required=True)
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    backbone = get_backbone("efficientnet_lite0")
    painting = load_image(args.painting)
    pil = StyleDistances(backbone, painting, args.size)  # the evaluation's target (PIL resize)
    taps = pil.style_taps
    with torch.no_grad():
        feats = backbone.features(style_target(painting, args.size, backbone.device), taps)
    torch_grams = {t: gram_matrix(feats[t]) for t in taps}

    def against_torch(image: np.ndarray) -> list[float]:
        x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            f = backbone.features(x, taps)
        return [float(normalized_style_loss(gram_matrix(f[t]), torch_grams[t])) for t in taps]

    def row(label: str, per_tap_pil: list[list[float]], per_tap_torch: list[list[float]]) -> None:
        a = [float(np.mean(t)) for t in per_tap_pil]
        b = [float(np.mean(t)) for t in per_tap_torch]
        taps_a = " / ".join(f"{v:.3f}" for v in np.median(per_tap_pil, axis=0))
        taps_b = " / ".join(f"{v:.3f}" for v in np.median(per_tap_torch, axis=0))
        print(f"| {label} | {statistics.median(a):.4f} | {taps_a} | {statistics.median(b):.4f} | {taps_b} |")

    print(f"taps: {', '.join(taps)}; medians over the photos of {args.content}, {args.size} px\n")
    print(
        "| render | vs PIL-resized painting (evaluation) | per tap | vs torch-resized painting (training, Gatys) | per tap |"
    )
    print("|---|---:|---|---:|---|")
    tensor_painting = (style_target(painting, args.size, backbone.device)[0].permute(1, 2, 0) * 255).round()
    torch_painting = tensor_painting.byte().cpu().numpy()
    row(
        "the painting, torch-resized",
        [list(pil.style_by_tap(torch_painting))],
        [against_torch(torch_painting)],
    )
    pil_painting = resize_long_side(painting, args.size)
    row("the painting, PIL-resized", [list(pil.style_by_tap(pil_painting))], [against_torch(pil_painting)])
    photos = {
        k: resize_long_side(load_image(v), args.size) for k, v in sorted(list_images(args.content).items())
    }
    for model in args.models:
        run = renderer(model)
        renders = [run(photo) for photo in photos.values()]
        row(str(model), [list(pil.style_by_tap(r)) for r in renders], [against_torch(r) for r in renders])
    return 0


if __name__ == "__main__":
    sys.exit(main())
