"""``atelier stylize IN --style-image PAINTING -o OUT``: arbitrary style transfer from the shell, with the
server's engine (``service.core.arbitrary.engine``), image limits and options."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from service.cli.common import print_json

if TYPE_CHECKING:
    from service.core.stylize.engine import StylizeOptions
    from service.settings import Settings


def stylize_with_painting(
    args: argparse.Namespace, settings: Settings, image: np.ndarray, options: StylizeOptions
) -> int:
    from dataclasses import asdict

    from service.cli.runtime import quiet_onnxruntime
    from service.core.arbitrary.engine import ArbitraryOptions, ArbitraryStyleEngine
    from service.core.imageio import load_image, save_image

    opts = ArbitraryOptions(**asdict(options), style_size=args.style_size)
    opts.check()
    painting = load_image(args.style_image, settings.image_limits())  # the same limits as any image
    with quiet_onnxruntime(args.verbose):
        engine = ArbitraryStyleEngine.load(
            settings.models_dir,
            providers=tuple(settings.ort_providers),
            intra_threads=settings.ort_intra_threads,
            inter_threads=settings.ort_inter_threads,
            tile_threshold=settings.tile_threshold,
            tile_size=settings.tile_size,
            tile_overlap=settings.tile_overlap,
        )
    with engine:
        engine.require()  # NotInstalled, saying what to do
        print(f"atelier: ONNX Runtime provider: {engine.provider}", file=sys.stderr)
        t0 = time.perf_counter()
        out = engine.stylize_with(image, painting, opts)
        ms = (time.perf_counter() - t0) * 1e3
        version, provider = engine.version, engine.provider
    save_image(out, args.output)
    if args.json:
        print_json({
            "output": args.output, "width": out.shape[1], "height": out.shape[0], "style": "custom",
            "style_image": str(args.style_image), "version": version, "provider": provider, "ms": ms,
        })  # fmt: skip
        return 0
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, WCT {version} on {provider}, {ms:.0f} ms)")
    return 0
