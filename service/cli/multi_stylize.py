"""``atelier stylize IN --blend a=0.7,b=0.3 [--mask FILE|saliency --background STYLE_OR_BLEND] -o OUT``:
blends of a multi-style net's styles and paint by region from the shell, with the server's engine, image
limits and mask rules (``service.core.stylize.blend``, ``service.core.stylize.regions``).

The style (``--style``) or blend (``--blend``) paints the whole image, or with ``--mask`` the mask's
subject: a mask image (white/opaque = subject, the photo's aspect ratio) or ``saliency`` (the Grad-CAM
map of the top class, on the embedded EfficientNet-Lite0). ``--background`` (a style name, or a blend when
it holds ``:`` or ``=``) paints the rest; without it the rest stays the photo.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from service.cli.common import print_json

if TYPE_CHECKING:
    from service.core.stylize.blend import Blend
    from service.core.stylize.engine import StyleEngine, StylizeOptions
    from service.settings import Settings

SALIENCY = "saliency"


def add_arguments(p: argparse.ArgumentParser, which: argparse._MutuallyExclusiveGroup) -> None:
    which.add_argument(
        "--blend",
        metavar="A=W,B=W",
        help="weights over a multi-style net's styles, e.g. starry_night=0.7,the_scream=0.3 (or JSON)",
    )
    p.add_argument(
        "--model", metavar="NET", help="the net a style or blend must come from (`atelier styles`)"
    )
    p.add_argument(
        "--mask",
        metavar="FILE|saliency",
        help="paint only the subject: a mask image (white = subject) or 'saliency' (Grad-CAM of the top class)",
    )
    p.add_argument(
        "--background",
        metavar="STYLE_OR_BLEND",
        help="with --mask: the style or blend painted outside the mask (default: the photo itself)",
    )


def wants_multi(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in ("blend", "model", "mask", "background"))


def _style_or_blend(text: str) -> tuple[str | None, Blend | None]:
    from service.core.stylize.blend import parse_blend

    stripped = text.strip()
    if ":" in stripped or "=" in stripped or stripped[:1] in ("{", "["):
        return None, parse_blend(stripped)
    return stripped, None


def _mask(args: argparse.Namespace, settings: Settings, prepared: np.ndarray) -> np.ndarray:
    from service.core.errors import InvalidArgument
    from service.core.stylize.regions import decode_mask, fit_mask, saliency_mask

    if args.mask == SALIENCY:
        from service.core.backbones import get_backbone

        net = get_backbone("efficientnet_lite0", settings.torch_device(), settings.backbone_weights())
        return saliency_mask(net, prepared)
    path = Path(args.mask)
    if not path.is_file():
        raise InvalidArgument(f"Mask file not found: {path} (or use --mask saliency).")
    return fit_mask(decode_mask(path.read_bytes(), settings.image_limits()), *prepared.shape[:2])


def stylize_multi(
    args: argparse.Namespace,
    settings: Settings,
    image: np.ndarray,
    options: StylizeOptions,
    engine: StyleEngine,
) -> int:
    """Render, save and report one blend or masked call (``engine``: every model of the folder)."""
    from service.core.errors import InvalidArgument
    from service.core.imageio import save_image
    from service.core.stylize.blend import parse_blend
    from service.core.stylize.regions import composite

    if args.background is not None and args.mask is None:
        raise InvalidArgument("--background paints outside a mask: add --mask FILE or --mask saliency.")
    blend = parse_blend(args.blend) if args.blend is not None else None
    fg = engine.choose(style=args.style, blend=blend, net=args.model)
    bg = None
    if args.background is not None:
        bg_style, bg_blend = _style_or_blend(args.background)
        bg = engine.choose(style=bg_style, blend=bg_blend)
    t0 = time.perf_counter()
    prepared = engine.prepare(image, options)
    out = engine.stylize(fg.net, prepared, options, weights=fg.weights)
    if args.mask is not None:
        mask = _mask(args, settings, prepared)
        outside = (
            engine.stylize(bg.net, prepared, options, weights=bg.weights) if bg is not None else prepared
        )
        out = composite(out, outside, mask)
    ms = (time.perf_counter() - t0) * 1e3
    info = engine.info(fg.net)
    save_image(out, args.output)
    background = "" if args.mask is None else (bg.style if bg is not None else "photo")
    if args.json:
        print_json({
            "output": args.output, "width": out.shape[1], "height": out.shape[0], "style": fg.style,
            "net": fg.net, "background": background, "mask": args.mask, "version": info.version,
            "provider": info.provider, "precision": info.precision, "ms": ms,
        })  # fmt: skip
        return 0
    outside_text = f", outside the mask {background}" if background else ""
    print(
        f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, {fg.style} of {fg.net}{outside_text} "
        f"on {info.provider}, {ms:.0f} ms)"
    )
    return 0
