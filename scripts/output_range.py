#!/usr/bin/env python
"""How far outside 0..255 each shipped style net paints before the served image is clipped.

The exported graphs clip their output; this reads each model's weights back from its .onnx
(``onnx_weights.checkpoint_from_onnx``), runs the bare PyTorch net on each photo (longer side ``--size``)
and prints the raw output's minimum and maximum and the share of pixels with a channel outside 0..255.
Nets trained on the raw output (``atelier train --no-clip-output``) paint far outside the range; the
backbone saw those values in training, the served image does not have them.

    python scripts/output_range.py --photos ../shared/data/content --out runs/output_range.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np
import torch

from service.core.imageio import load_image
from service.core.stylize.evaluate import list_images, resize_long_side
from service.core.stylize.manifest import read_manifest
from service.core.stylize.onnx_weights import checkpoint_from_onnx
from service.core.stylize.train import net_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "content")
    p.add_argument("--size", type=int, default=512, help="longer side of each photo (default 512)")
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    args = p.parse_args(argv)
    photos = {n: resize_long_side(load_image(f), args.size) for n, f in list_images(args.photos).items()}
    lines = [
        f"Raw output of each net (before the served image is clipped to 0..255) on {len(photos)} photos at "
        f"{args.size} px; `python scripts/output_range.py`.",
        "",
        "| model | version | min | max | pixels outside 0..255 (mean over photos) |",
        "|---|---:|---:|---:|---:|",
    ]
    for entry in read_manifest(args.models_dir):
        net = net_from_checkpoint(checkpoint_from_onnx(args.models_dir / entry.file))
        lo, hi, share = np.inf, -np.inf, []
        for img in photos.values():
            h, w = img.shape[0] // 4 * 4, img.shape[1] // 4 * 4  # the bare nets need multiples of 4
            x = torch.from_numpy(np.ascontiguousarray(img[:h, :w].transpose(2, 0, 1)))[None].float()
            with torch.inference_mode():
                y = net(x)
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
            share.append(float(((y < 0) | (y > 255)).any(dim=1).float().mean()))
        lines.append(
            f"| `{entry.name}` | {entry.version} | {lo:.0f} | {hi:.0f} | {100 * np.mean(share):.1f} % |"
        )
        print(lines[-1], file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
