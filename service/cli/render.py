"""``atelier gatys``, ``atelier dream`` and ``atelier visualize class|invert|texture|filters|patches``:
the slow PyTorch renders, with a progress bar and optional preview frames."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.common import add_backbone_arg, add_json_arg, print_json, progress_bar, settings_from_args
from service.core.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np

    from service.core.backbones import Backbone
    from service.core.progress import Progress, ProgressCallback
    from service.settings import Settings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _common(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    p.add_argument(
        "-o", "--output", required=out_required, type=Path, help="output image (.png, .jpg, .webp)"
    )
    p.add_argument("--quality", type=int, default=90, help="JPEG/WebP quality 1..100 (default 90)")
    add_backbone_arg(p)
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None, help="torch device (default: auto)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same image")
    p.add_argument(
        "--pooling",
        choices=("max", "avg"),
        default="max",
        help="VGG only: avg swaps the max pools for average pools, as Gatys et al. did (default max)",
    )
    p.add_argument(
        "--preview-every",
        type=int,
        default=0,
        metavar="N",
        help="write OUT_stepNNNN frames every N iterations",
    )


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("gatys", help="style transfer by optimisation (Gatys et al. 2015)")
    g.add_argument("content", type=Path, metavar="CONTENT")
    g.add_argument("styles", type=Path, nargs="+", metavar="STYLE")
    _common(g)
    g.add_argument("--size", type=int, default=512, help="longer side of the result (default 512)")
    g.add_argument("--steps", type=int, default=300, help="iterations per scale (default 300)")
    g.add_argument("--scales", type=_ints, default=None, help="coarse-to-fine sides, e.g. 256,512")
    g.add_argument("--scale-steps", type=_ints, default=None, help="iterations per scale, e.g. 200,60")
    g.add_argument("--style-blend", type=_floats, default=None, help="one weight per style, e.g. 0.7,0.3")
    g.add_argument("--style-scale", type=float, default=1.0, help="style image size relative to the result")
    g.add_argument("--preserve-color", action="store_true", help="keep the content photo's colours")
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    g.add_argument("--init", choices=("content", "noise"), default="content")
    g.add_argument("--content-weight", type=float, default=None)
    g.add_argument("--style-weight", type=float, default=None)
    g.add_argument("--tv-weight", type=float, default=None)
    g.set_defaults(func=run_gatys)

    d = sub.add_parser("dream", help="DeepDream (Mordvintsev et al. 2015)")
    d.add_argument("image", type=Path, metavar="IMAGE")
    _common(d)
    d.add_argument("--layers", type=_names, default=(), help="comma-separated taps (default per backbone)")
    d.add_argument("--channel", type=int, default=None, help="amplify this channel only")
    d.add_argument("--octaves", type=int, default=4)
    d.add_argument("--octave-scale", type=float, default=1.4)
    d.add_argument("--steps", type=int, default=10, help="steps per octave")
    d.add_argument("--step-size", type=float, default=0.01)
    d.add_argument("--jitter", type=int, default=32)
    d.add_argument("--tile-size", type=int, default=512)
    d.add_argument("--guide", type=Path, default=None, help="guide image")
    d.add_argument("--size", type=int, default=None, help="resize the input's longer side first")
    d.set_defaults(func=run_dream)

    v = sub.add_parser("visualize", help="class visualisation, inversion, texture, filters, top patches")
    vs = v.add_subparsers(dest="what", metavar="WHAT", required=True)
    c = vs.add_parser("class", help="an image a class scores highly (Simonyan et al. 2014)")
    c.add_argument("target", metavar="CLASS", help="ImageNet index or label, e.g. 'goldfish'")
    _common(c)
    c.add_argument("--size", type=int, default=224)
    c.add_argument("--steps", type=int, default=200)
    c.add_argument(
        "--parametrization",
        choices=["fourier", "pixel"],
        default="fourier",
        help="fourier: decorrelated spectrum + Adam (Olah et al. 2017, default); pixel: Simonyan et al. 2014",
    )
    c.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (fourier)")
    c.add_argument("--jitter", type=int, default=32, help="largest random roll in px before each step")
    c.add_argument("--scale-jitter", type=float, default=0.25, help="random rescale fraction (fourier)")
    c.add_argument("--step-size", type=float, default=0.01, help="pixel method: step per iteration")
    c.add_argument("--l2-weight", type=float, default=1e-3, help="pixel method: L2 penalty")
    c.add_argument("--blur-every", type=int, default=10, help="pixel method: blur every N steps")
    c.add_argument("--blur-sigma", type=float, default=0.5, help="pixel method: blur sigma")
    c.set_defaults(func=run_class)

    i = vs.add_parser("invert", help="reconstruct an image from one tap (Mahendran & Vedaldi 2015)")
    i.add_argument("image", type=Path, metavar="IMAGE")
    _common(i)
    i.add_argument("--tap", default=None, help="tap to invert (default: the backbone's content tap)")
    i.add_argument("--size", type=int, default=224)
    i.add_argument("--steps", type=int, default=200)
    i.add_argument("--optimizer", choices=("lbfgs", "adam"), default="adam")
    i.add_argument("--tv-weight", type=float, default=30.0)
    i.set_defaults(func=run_invert)

    t = vs.add_parser("texture", help="texture synthesis by Gram matching (Gatys et al. 2015)")
    t.add_argument("source", type=Path, metavar="SOURCE")
    _common(t)
    t.add_argument("--size", type=int, default=256)
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    t.add_argument("--taps", type=_names, default=None, help="comma-separated style taps")
    t.add_argument("--tv-weight", type=float, default=0.0)
    t.set_defaults(func=run_texture)

    f = vs.add_parser("filters", help="the first-layer filters as an image")
    f.add_argument("-o", "--output", required=True, type=Path)
    add_backbone_arg(f)
    f.add_argument("--scale", type=int, default=8, help="pixels per filter weight")
    f.set_defaults(func=run_filters)

    pt = vs.add_parser("patches", help="image patches that excite one channel most")
    pt.add_argument("folder", type=Path, metavar="FOLDER")
    pt.add_argument("-o", "--output", required=True, type=Path)
    add_backbone_arg(pt)
    pt.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    pt.add_argument("--tap", required=True, help="e.g. block3.expand")
    pt.add_argument("--channel", type=int, required=True)
    pt.add_argument("--top-k", type=int, default=16)
    pt.add_argument("--size", type=int, default=224)
    pt.add_argument("--limit", type=int, default=None, help="read at most this many images")
    add_json_arg(pt, "{output, patches: [{image, activation, box}]}")
    pt.set_defaults(func=run_patches)


# --------------------------------------------------------------------------------------------------------
def _setup(args: argparse.Namespace) -> tuple[Settings, Backbone]:
    import torch

    from service.core.backbones import get_backbone

    settings = settings_from_args(args, device=getattr(args, "device", None))
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = settings.torch_device()
    name = args.backbone or settings.default_backbone
    pooling = getattr(args, "pooling", "max")
    backbone = get_backbone(name, device, settings.backbone_weights(), pooling=pooling)
    return settings, backbone


def _load(path: Path, settings: Settings) -> np.ndarray:
    from service.core.imageio import load_image

    return load_image(path, settings.image_limits())


def preview_path(out: Path, step: int) -> Path:
    return out.with_name(f"{out.stem}_step{step:04d}{out.suffix or '.png'}")


def _render(args: argparse.Namespace, desc: str, total: int, work: Callable[[ProgressCallback], Any]) -> Any:
    """Run ``work(progress)`` under a progress bar, writing preview frames when asked."""
    from service.core.imageio import save_image

    write_previews = bool(getattr(args, "preview_every", 0))
    with progress_bar(desc, total) as bar:

        def report(p: Progress) -> None:
            bar(p)
            if p.preview is not None and write_previews:
                save_image(p.preview, preview_path(args.output, p.step))

        return work(report)


def _save(image: np.ndarray, out: Path, quality: int = 90) -> int:
    from service.core.imageio import save_image

    save_image(image, out, quality)
    print(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")
    return 0


def run_gatys(args: argparse.Namespace) -> int:
    from service.core.render.gatys import GatysOptions, gatys

    settings, backbone = _setup(args)
    content = _load(args.content, settings)
    styles = [_load(p, settings) for p in args.styles]
    o = GatysOptions(
        size=args.size,
        steps=args.steps,
        scales=args.scales or None,
        scale_steps=args.scale_steps or None,
        optimizer=args.optimizer,
        init=args.init,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        style_scale=args.style_scale,
        style_blend=args.style_blend or None,
        preserve_color=args.preserve_color,
        seed=args.seed,
        preview_every=args.preview_every,
        max_side=settings.max_side_slow,
    )
    total = sum(o.scale_steps) if o.scale_steps else o.steps * len(o.scales or (o.size,))
    out = _render(args, "gatys", total, lambda cb: gatys(backbone, content, styles, o, progress=cb))
    return _save(out, args.output, args.quality)


def run_dream(args: argparse.Namespace) -> int:
    from service.core.render.deepdream import DreamOptions, deepdream

    settings, backbone = _setup(args)
    image = _load(args.image, settings)
    o = DreamOptions(
        layers=args.layers,
        channel=args.channel,
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        steps=args.steps,
        step_size=args.step_size,
        jitter=args.jitter,
        tile_size=args.tile_size,
        guide=_load(args.guide, settings) if args.guide else None,
        seed=args.seed,
        preview_every=args.preview_every,
        size=args.size,
        max_side=settings.max_side_slow,
    )
    out = _render(args, "dream", o.octaves * o.steps, lambda cb: deepdream(backbone, image, o, progress=cb))
    return _save(out, args.output, args.quality)


def run_class(args: argparse.Namespace) -> int:
    from service.core.render.class_viz import ClassVizOptions, class_visualization

    settings, backbone = _setup(args)
    o = ClassVizOptions(
        size=args.size,
        steps=args.steps,
        step_size=args.step_size,
        l2_weight=args.l2_weight,
        blur_every=args.blur_every,
        blur_sigma=args.blur_sigma,
        parametrization=args.parametrization,
        learning_rate=args.lr,
        jitter=args.jitter,
        scale_jitter=args.scale_jitter,
        seed=args.seed,
        preview_every=args.preview_every,
        max_side=settings.max_side_slow,
    )
    out = _render(
        args, "class", o.steps, lambda cb: class_visualization(backbone, args.target, o, progress=cb)
    )
    return _save(out, args.output, args.quality)


def run_invert(args: argparse.Namespace) -> int:
    from service.core.render.inversion import InversionOptions, feature_inversion

    settings, backbone = _setup(args)
    image = _load(args.image, settings)
    o = InversionOptions(
        tap=args.tap,
        size=args.size,
        steps=args.steps,
        optimizer=args.optimizer,
        tv_weight=args.tv_weight,
        seed=args.seed,
        preview_every=args.preview_every,
        max_side=settings.max_side_slow,
    )
    out = _render(args, "invert", o.steps, lambda cb: feature_inversion(backbone, image, o, progress=cb))
    return _save(out, args.output, args.quality)


def run_texture(args: argparse.Namespace) -> int:
    from service.core.render.texture import TextureOptions, texture_synthesis

    settings, backbone = _setup(args)
    source = _load(args.source, settings)
    o = TextureOptions(
        size=args.size,
        steps=args.steps,
        optimizer=args.optimizer,
        taps=args.taps or None,
        tv_weight=args.tv_weight,
        seed=args.seed,
        preview_every=args.preview_every,
        max_side=settings.max_side_slow,
    )
    out = _render(args, "texture", o.steps, lambda cb: texture_synthesis(backbone, source, o, progress=cb))
    return _save(out, args.output, args.quality)


def run_filters(args: argparse.Namespace) -> int:
    from service.core.render.filters import filter_grid

    _, backbone = _setup(args)
    return _save(filter_grid(backbone, scale=args.scale), args.output)


def run_patches(args: argparse.Namespace) -> int:
    from service.core.render.patches import PatchOptions, max_activating_patches, patch_grid

    settings, backbone = _setup(args)
    if not args.folder.is_dir():
        raise InvalidArgument(f"Not a folder: {args.folder}")
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[: args.limit] if args.limit else files
    if not files:
        raise InvalidArgument(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {args.folder}.")
    o = PatchOptions(size=args.size, top_k=args.top_k, max_pixels=settings.max_image_pixels)
    images = (_load(p, settings) for p in files)
    patches = _render(
        args,
        "patches",
        len(files),
        lambda cb: max_activating_patches(
            backbone, images, args.tap, args.channel, o, progress=cb, total=len(files)
        ),
    )
    grid = patch_grid(patches)
    if args.json:
        from service.core.imageio import save_image

        save_image(grid, args.output)
        rows = [
            {"image": str(files[p.image_index]), "activation": p.activation, "box": p.box} for p in patches
        ]
        print_json({"output": args.output, "width": grid.shape[1], "height": grid.shape[0], "patches": rows})
        return 0
    for p in patches:
        print(f"{p.activation:9.4f}  {files[p.image_index].name}  box={p.box}")
    return _save(grid, args.output)
