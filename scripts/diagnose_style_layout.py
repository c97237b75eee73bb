#!/usr/bin/env python
"""Where in the picture the style statistics are matched: the whole image against its halves.

The eval-style distance compares Gram matrices of the *whole* result with the painting's. Gatys
optimisation can trade regions against each other: it may paint the sky far from the painting's statistics
and the ground far the other way, so that the mixture matches. A feed-forward net (Johnson et al. 2016)
sees only a neighbourhood of each pixel (plus instance-norm statistics), so it cannot plan such a balance.

For each model and photo this prints the style distance of the whole image and the mean distance of its
four halves (top, bottom, left, right), each half compared with the whole painting, for the fast net and for
the cached Gatys reference of eval-style (computed and cached when missing, which is slow on a CPU). A
halves / whole ratio far above 1 means the image's statistics match the painting only as a mixture.

    python scripts/diagnose_style_layout.py --cache-dir runs/eval_cache --models the_scream udnie
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np

from service.core.imageio import load_image
from service.core.stylize.engine import StyleEngine
from service.core.stylize.evaluate import (
    EvalOptions,
    StyleDistances,
    gatys_reference,
    list_images,
    match_style_images,
    resize_long_side,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def halves(image: np.ndarray) -> list[np.ndarray]:
    h, w = image.shape[:2]
    return [image[: h // 2], image[h // 2 :], image[:, : w // 2], image[:, w // 2 :]]


def whole_and_halves(d: StyleDistances, image: np.ndarray) -> tuple[float, float]:
    whole = float(np.mean(d.style_by_tap(image)))
    parts = [float(np.mean(d.style_by_tap(np.ascontiguousarray(p)))) for p in halves(image)]
    return whole, float(np.mean(parts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--content-dir", type=Path, default=DATA / "content")
    p.add_argument("--styles-dir", type=Path, default=DATA / "styles")
    p.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "eval_style_cache")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--gatys-steps", type=int, default=300)
    p.add_argument(
        "--models", nargs="*", default=(), help="model names (default: every model with a painting)"
    )
    p.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    import torch

    from service.core.backbones import get_backbone

    options = EvalOptions(size=args.size, gatys_steps=args.gatys_steps, cache_dir=args.cache_dir)
    backbone = get_backbone("efficientnet_lite0", "cpu")
    photos = {n: resize_long_side(load_image(f), args.size) for n, f in list_images(args.content_dir).items()}
    lines = [
        f"Style distance of the whole {args.size} px result and the mean over its four halves (each half against "
        "the whole painting), averaged over the photos; `python scripts/diagnose_style_layout.py`.",
        "",
        "| model | fast: whole | fast: halves | fast: halves / whole | Gatys: whole | Gatys: halves | "
        "Gatys: halves / whole |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    with StyleEngine.load(args.models_dir, providers=("CPUExecutionProvider",)) as engine:
        paths, _ = match_style_images(engine, args.styles_dir)
        chosen = {m: f for m, f in paths.items() if not args.models or m in args.models}
        for model, painting_path in chosen.items():
            painting = load_image(painting_path)
            d = StyleDistances(backbone, painting, args.size)
            fast_rows, gatys_rows = [], []
            for photo, content in photos.items():
                fast = engine.stylize(model, content)
                ref, _ = gatys_reference(
                    backbone, content, painting, options, f"{engine.info(model).style}__{photo}"
                )
                with torch.no_grad():
                    fast_rows.append(whole_and_halves(d, fast))
                    gatys_rows.append(whole_and_halves(d, ref))
                f, g = fast_rows[-1], gatys_rows[-1]
                print(
                    f"{model:22s} {photo:20s} fast {f[0]:.4f} / {f[1]:.4f}   Gatys {g[0]:.4f} / {g[1]:.4f}",
                    file=sys.stderr,
                )
            fw, fh = np.mean(fast_rows, axis=0)
            gw, gh = np.mean(gatys_rows, axis=0)
            lines.append(
                f"| `{model}` | {fw:.4f} | {fh:.4f} | {fh / fw:.2f} | {gw:.4f} | {gh:.4f} | {gh / gw:.2f} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
