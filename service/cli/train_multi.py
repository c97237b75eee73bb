"""``atelier train-multi`` (one net for several paintings) and ``atelier train --add-style`` (one more
style in a trained multi-style net, only its table rows trained; docs/multi_style.md).

Both take the recipe flags of ``atelier train`` (``train.add_recipe_args``): the same levers, CPU budget,
checkpoints and ``--resume``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from service.cli.common import progress_bar


def add_style_args(t: argparse.ArgumentParser) -> None:
    """``atelier train``'s flags for adding a style to a multi-style net."""
    g = t.add_argument_group("adding a style to a multi-style net (only its norm/FiLM rows train)")
    g.add_argument("--add-style", metavar="NAME", help="the new style's name (with --style-image, --into)")
    g.add_argument(
        "--into",
        type=Path,
        help="the multi net: its .ckpt, its exported .onnx (card beside it) or a models folder",
    )
    g.add_argument("--net", help="which multi net of the --into folder's manifest (default: the first)")
    g.add_argument(
        "--models",
        type=Path,
        default=Path("models"),
        help="where to export when --into is a checkpoint (default models/; a folder --into exports there)",
    )
    g.add_argument("--no-export", dest="export", action="store_false", help="train only, do not export")
    g.add_argument("--title", help="the new painting's title, when the built-in table lacks it")
    g.add_argument("--artist", help="the new painting's artist")
    g.add_argument("--year", help="the new painting's year")
    g.add_argument("--licence", help="the new painting's licence")


def register(sub: argparse._SubParsersAction) -> None:
    from service.cli.train import add_recipe_args

    m = sub.add_parser(
        "train-multi",
        help="train one multi-style network (conditional instance norm) for several paintings",
    )
    m.add_argument("--name", required=True, help="the net's name (default file <out>/<name>.ckpt)")
    m.add_argument(
        "--style",
        action="append",
        required=True,
        metavar="NAME=PAINTING",
        help="a style and its painting; repeat for each style, in the style vector's order",
    )
    m.add_argument(
        "--data", required=True, type=Path, help="folder of training photos (searched recursively)"
    )
    add_recipe_args(m)
    m.add_argument(
        "--order",
        choices=("round_robin", "random"),
        default="round_robin",
        help="which style each step trains (from seed and step, so resumes repeat it; default round_robin)",
    )
    m.add_argument("--out", type=Path, default=Path("runs"), help="checkpoint folder (default runs/)")
    m.add_argument("--resume", action="store_true", help="continue from <out>/<name>.ckpt")
    m.add_argument(
        "--init-from",
        "--init",
        dest="init_from",
        type=Path,
        help="start from a mobile2 checkpoint or .onnx (every style starts as that net, e.g. the identity "
        "warm start) or a multi net with as many styles",
    )
    m.set_defaults(func=run_train_multi)


def _parse_styles(specs: list[str]) -> list[tuple[str, Path]]:
    from service.core.errors import InvalidArgument

    out = []
    for spec in specs:
        name, sep, painting = spec.partition("=")
        if not sep or not name or not painting:
            raise InvalidArgument(f"--style takes NAME=PAINTING, got {spec!r}.")
        out.append((name.strip(), Path(painting)))
    return out


def _report(label: str, step: int, seconds: float, losses: dict[str, float]) -> None:
    text = ", ".join(f"{k} {v:.4g}" for k, v in losses.items())
    print(f"{label}: step {step}, {text} ({seconds:.0f} s)")


def run_train_multi(args: argparse.Namespace) -> int:
    from service.cli.train import recipe_config
    from service.core.backbones import get_backbone
    from service.core.imageio import load_image
    from service.core.stylize.nets.multi import MULTI_ARCH
    from service.core.stylize.train_multi import StyleSource, check_style_names, train_multi

    config = recipe_config(args, MULTI_ARCH)
    pairs = _parse_styles(args.style)
    check_style_names([n for n, _ in pairs])  # before decoding any painting
    styles = [StyleSource(name, load_image(path), file=path) for name, path in pairs]
    backbone = get_backbone(config.backbone, config.device)
    with progress_bar(f"train-multi {args.name} ({len(styles)} styles)", config.steps) as bar:
        result = train_multi(
            config,
            styles,
            args.data,
            args.out,
            args.name,
            backbone,
            resume=args.resume,
            init_from=args.init_from,
            order=args.order,
            progress=bar,
        )
    _report(str(result.checkpoint), result.step, result.seconds, result.losses)
    return 0


def run_add_style(args: argparse.Namespace) -> int:
    from service.cli.train import recipe_config
    from service.core.backbones import get_backbone
    from service.core.errors import InvalidArgument
    from service.core.imageio import load_image
    from service.core.stylize.add_style import add_style
    from service.core.stylize.nets.multi import MULTI_ARCH
    from service.core.stylize.train_multi import StyleSource

    if args.into is None or args.style_image is None:
        raise InvalidArgument(
            "--add-style NAME needs --style-image IMG and --into MODEL (ckpt, .onnx or folder)."
        )
    if args.identity or args.init_from is not None:
        raise InvalidArgument("--add-style starts from --into; --identity and --init do not apply.")
    config = recipe_config(args, MULTI_ARCH)
    style = StyleSource(
        args.add_style,
        load_image(args.style_image),
        file=args.style_image,
        title=args.title,
        artist=args.artist,
        year=args.year,
        licence=args.licence,
    )
    backbone = get_backbone(config.backbone, config.device)
    with progress_bar(f"add-style {args.add_style}", config.steps) as bar:
        result = add_style(
            config,
            style,
            args.into,
            args.data,
            args.out,
            backbone,
            net_name=args.net,
            models_dir=args.models,
            export=args.export,
            resume=args.resume,
            progress=bar,
        )
    _report(str(result.checkpoint), result.step, result.seconds, result.losses)
    if result.card is not None:
        parity = ", ".join(f"{k}: {v:.3g}" for k, v in dict(result.card["parity_max_abs_error"]).items())
        styles = ", ".join(s["name"] for s in result.card["styles"])
        print(f"exported {result.card['file']} v{result.card['version']} ({styles}); parity {parity}")
    return 0
