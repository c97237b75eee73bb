"""``atelier styles``, ``atelier stylize`` and ``atelier eval-style``: the fast style models from the shell.

* ``styles`` lists the models of the models folder with their metadata and the provider each runs on;
  models that failed to load are listed on stderr with the reason.
* ``stylize IN --style NAME -o OUT`` runs one model on one image (same engine as the server);
  ``stylize IN --style-image PAINTING -o OUT`` uses any painting instead (``arbitrary_stylize.py``);
  ``--blend a=0.7,b=0.3`` mixes a multi-style net's styles, ``--mask FILE|saliency`` with
  ``--background STYLE_OR_BLEND`` paints two by region (``multi_stylize.py``).
* ``styles`` shows the net serving each style (a multi-style net lists each of its styles).
* ``eval-style`` measures each model against Gatys optimisation (``service.core.stylize.evaluate``): style
  and content distances, and the picture measures (structure, grid score, droplets); ``--json`` prints
  the same report as JSON. The same function backs ``scripts/eval_style.py``, which runs without the
  server dependencies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.common import add_json_arg, print_json, print_table, progress_bar, settings_from_args
from service.cli.multi_stylize import add_arguments as add_multi_arguments
from service.cli.multi_stylize import stylize_multi, wants_multi

if TYPE_CHECKING:
    from service.core.stylize.engine import StyleEngine
    from service.settings import Settings

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _add_models_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder with manifest.json (default: ATELIER_MODELS_DIR)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("styles", help="list the fast style models and their metadata")
    _add_models_dir(p)
    add_json_arg(p, "a list with one object per model, card included,")
    p.set_defaults(func=run_styles)

    p = sub.add_parser("stylize", help="stylise an image with a fast style model (ONNX Runtime)")
    p.add_argument("input", metavar="IN", help="image file (JPEG, PNG, WebP, BMP, TIFF, GIF)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--style", help="model name (see `atelier styles`)")
    which.add_argument(
        "--style-image",
        type=Path,
        metavar="PAINTING",
        help="any painting instead of a named style (arbitrary style, WCT; docs/arbitrary_style.md)",
    )
    add_multi_arguments(p, which)  # --blend, --model, --mask, --background (multi_stylize.py)
    p.add_argument(
        "--style-size", type=int, default=512, help="with --style-image: the painting's longer side (512)"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png, .jpg, .webp)")
    p.add_argument("--strength", type=float, default=1.0, help="0..1 blend with the photo (default 1)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours (luminance only)")
    p.add_argument("--max-side", type=int, default=None, help="downscale so the longer side is at most this")
    _add_models_dir(p)
    add_json_arg(p, "{output, width, height, style, version, provider, precision, ms}")
    p.set_defaults(func=run_stylize)

    p = sub.add_parser(
        "eval-style",
        help="measure the fast models against Gatys (Gram and content distances, structure, grid, droplets)",
    )
    _add_models_dir(p)
    p.add_argument("--content-dir", type=Path, default=DATA_DIR / "content", help="photos to stylise")
    p.add_argument("--styles-dir", type=Path, default=DATA_DIR / "styles", help="the style paintings")
    p.add_argument("--size", type=int, default=512, help="longer side of photos and results (default 512)")
    p.add_argument("--gatys-steps", type=int, default=300, help="L-BFGS iterations of the Gatys reference")
    p.add_argument("--max-photos", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument("--models", nargs="*", default=(), help="model names (default: all with a painting)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="torch device (default: settings)")
    p.add_argument("--cache-dir", type=Path, default=Path("runs/eval_style_cache"), help="Gatys result cache")
    p.add_argument("--out", type=Path, default=None, help="also write the markdown table to this file")
    p.add_argument("--sheet", type=Path, default=None, help="PNG contact sheet: photo | fast | Gatys")
    add_json_arg(p, "the report (settings, per-model summaries and every pair)")
    p.set_defaults(func=run_eval)


def _engine(args: argparse.Namespace, names: list[str] | None = None) -> tuple[Settings, StyleEngine]:
    from service.cli.runtime import load_engine

    settings = settings_from_args(args, models_dir=args.models_dir)
    return settings, load_engine(settings, args.verbose, names)


def run_styles(args: argparse.Namespace) -> int:
    settings, engine = _engine(args)
    with engine:
        infos = engine.styles()
        if args.json:
            print_json(
                [
                    {k: v for k, v in vars(i).items() if k not in ("load_s", "warmup_s")}
                    for i in infos  # dataclass fields, card included
                ]
            )
        elif infos:
            header = ("name", "arch", "version", "provider", "precision", "net", "painting")
            print_table(header, [
                (i.name, i.arch, i.version, i.provider.removesuffix("ExecutionProvider"), i.precision, i.net,
                 ", ".join(x for x in (i.title, i.artist, i.year) if x))
                for i in infos
            ])  # fmt: skip
        if not infos:
            print(f"no style models loaded from {settings.models_dir}", file=sys.stderr)
        for name, why in sorted(engine.load_errors.items()):
            print(f"skipped {name}: {why}", file=sys.stderr)
    return 0 if infos else 1


def run_stylize(args: argparse.Namespace) -> int:
    from service.core.errors import InvalidArgument, ModelLoadError
    from service.core.imageio import load_image, normalize_format, save_image
    from service.core.stylize.engine import StylizeOptions

    settings = settings_from_args(args, models_dir=args.models_dir)
    # The server's cap applies here too; a smaller --max-side downscales further.
    max_side = min(args.max_side or settings.max_side_stylize, settings.max_side_stylize)
    options = StylizeOptions(args.strength, args.preserve_color, max_side)
    options.check()  # bad options and an unknown output type fail before anything is loaded
    normalize_format(Path(args.output).suffix or "png")
    image = load_image(args.input, settings.image_limits())
    if args.style_image is not None:
        from service.cli.arbitrary_stylize import stylize_with_painting

        if wants_multi(args):
            raise InvalidArgument("--style-image takes no --blend, --model, --mask or --background.")
        return stylize_with_painting(args, settings, image, options)
    if wants_multi(args):  # blends and regions may need any model of the folder: load them all
        _, engine = _engine(args)
        with engine:
            return stylize_multi(args, settings, image, options, engine)
    _, engine = _engine(args, names=[args.style])
    with engine:
        for key in (args.style, "manifest.json"):  # the engine only records why; the command says it
            if key in engine.load_errors:
                raise ModelLoadError(f"Style model {args.style!r} cannot be used: {engine.load_errors[key]}")
        t0 = time.perf_counter()
        out = engine.stylize(args.style, image, options)
        ms = (time.perf_counter() - t0) * 1e3
        info = engine.info(args.style)
    save_image(out, args.output)
    if args.json:
        print_json({
            "output": args.output, "width": out.shape[1], "height": out.shape[0], "style": args.style,
            "version": info.version, "provider": info.provider, "precision": info.precision, "ms": ms,
        })  # fmt: skip
        return 0
    print(
        f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, {args.style} on {info.provider}, {ms:.0f} ms)"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from service.core.imageio import save_image
    from service.core.stylize.evaluate import (
        EvalOptions,
        contact_sheet,
        report_json,
        report_markdown,
        run_evaluation,
    )

    settings = settings_from_args(args, models_dir=args.models_dir)
    options = EvalOptions(
        size=args.size,
        gatys_steps=args.gatys_steps,
        cache_dir=args.cache_dir,
        keep_images=1 if args.sheet else 0,
    )
    with progress_bar("eval-style", 1) as progress:
        report = run_evaluation(
            settings.models_dir,
            args.content_dir,
            args.styles_dir,
            options,
            device=args.device or settings.torch_device(),
            providers=tuple(settings.ort_providers),
            models=tuple(args.models),
            max_photos=args.max_photos,
            backbone_name=settings.default_backbone,
            progress=progress,
        )
    table = report_markdown(report)
    if args.json:
        print_json(report_json(report))
    else:
        print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table, encoding="utf-8")
    if args.sheet:
        save_image(contact_sheet(report), args.sheet)
    return 0
