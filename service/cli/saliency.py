"""``atelier saliency`` (maps for images) and ``atelier saliency-report`` (faithfulness and sanity tables)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.cli.common import add_backbone_arg, add_json_arg, print_json, progress_bar, settings_from_args
from service.core.errors import InvalidArgument

METHOD_HELP = (
    "gradient, gradient_x_input, guided_backprop, smoothgrad, integrated_gradients, gradcam, gradcam_pp, "
    "guided_gradcam, occlusion, rise, or all; a variant as name[key=value,...]"
)
REPORT_IMAGES = ("coffee", "chelsea", "rocket", "astronaut")
# Model-dependent methods, cheap enough for the default sanity table (occlusion and RISE can be added).
SANITY_METHODS = "gradient,gradient_x_input,guided_backprop,smoothgrad,integrated_gradients,gradcam,gradcam_pp,guided_gradcam"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("saliency", help="saliency maps: which pixels a class score depends on")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--method", default="gradcam", help=f"{METHOD_HELP} (default gradcam)")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="file (one map) or directory (several)"
    )
    p.add_argument(
        "--target", default=None, help="class index or ImageNet label (default: each image's top-1)"
    )
    p.add_argument("--overlay", action="store_true", help="draw the map over the image (png only)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity 0..1 (default 0.5)")
    p.add_argument("--cmap", default="inferno", help="matplotlib colour map (default inferno)")
    p.add_argument("--format", choices=("png", "npy"), default=None, help="default: OUT's suffix, else png")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter")
    p.add_argument("--size", type=int, default=224, help="shorter side the network sees (default 224)")
    p.add_argument("--top", type=int, default=3, help="predictions to print per image (default 3)")
    p.add_argument("--sheet", default=None, metavar="FILE", help="also write a contact sheet (first image)")
    add_backbone_arg(p)
    add_json_arg(p, "{maps: [{image, method, file, target, predictions}], sheet}")
    p.set_defaults(func=run_saliency)

    r = sub.add_parser("saliency-report", help="faithfulness (deletion) and sanity (randomisation) tables")
    r.add_argument(
        "images", nargs="*", metavar="IMAGE", help=f"default: scikit-image {', '.join(REPORT_IMAGES)}"
    )
    r.add_argument("--methods", default="all", help=f"comma-separated: {METHOD_HELP}")
    r.add_argument(
        "--sanity-methods", default=SANITY_METHODS, help="comma-separated methods for the sanity table"
    )
    r.add_argument("--size", type=int, default=224, help="shorter side the network sees (default 224)")
    r.add_argument("--steps", type=int, default=20, help="deletion curve steps (default 20)")
    r.add_argument("--stages", default="1,2,5,17", help="cumulative top conv/linear layers randomised")
    r.add_argument("--no-faithfulness", action="store_true")
    r.add_argument("--no-sanity", action="store_true")
    r.add_argument("--out", default=None, help="also write the tables (markdown) to this file")
    add_backbone_arg(r)
    add_json_arg(r, "the faithfulness and sanity rows")
    r.set_defaults(func=run_report)


def _params(items: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"--param expects KEY=VALUE, got {item!r}.")
        params[key.strip()] = value.strip()
    return params


def _methods(text: str) -> list[str]:
    from service.core.saliency import METHODS

    names, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):  # split on commas outside name[key=value,...] brackets
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            names.append(text[start:i].strip())
            start = i + 1
    names = [n for n in names if n]
    return list(METHODS) if names == ["all"] else names


def _backbone(args: argparse.Namespace) -> Any:
    from service.core.backbones import load_backbone

    settings = settings_from_args(args)
    return settings, load_backbone(
        args.backbone or settings.default_backbone, settings.torch_device(), settings.backbone_weights()
    )


def run_saliency(args: argparse.Namespace) -> int:
    from service.core.imageio import load_image
    from service.core.saliency import explain
    from service.core.saliency.registry import parse_method_spec
    from service.core.saliency.render import save_saliency

    methods = _methods(args.method)
    specs = [parse_method_spec(m) for m in methods]
    out = Path(args.output)
    fmt = args.format or (out.suffix.lower().lstrip(".") if out.suffix.lower() in (".png", ".npy") else "png")
    if args.overlay and fmt == "npy":
        raise InvalidArgument("--overlay draws a picture; use it with --format png.")
    many = len(args.images) > 1 or len(methods) > 1
    if many and out.suffix:
        raise InvalidArgument(f"Several maps are written to a directory; {out} looks like a file name.")
    settings, backbone = _backbone(args)
    images = [load_image(p, settings.image_limits()) for p in args.images]
    target = args.target
    sheet: list[tuple[str, Any]] = []
    written: list[dict[str, Any]] = []  # the --json document's "maps"
    for (name, spec_params), label in zip(specs, methods, strict=True):
        params = {**spec_params, **_params(args.param)}
        with progress_bar(label, 1) as bar:
            res = explain(
                backbone, images, name, target, params, top_k=args.top, progress=bar, size=args.size
            )
        for path, image, smap, t, preds in zip(
            args.images, images, res.maps, res.targets, res.predictions, strict=True
        ):
            dest = out / f"{Path(path).stem}.{_slug(label)}.{fmt}" if many else out
            save_saliency(
                dest.with_suffix(f".{fmt}"), smap, image if args.overlay else None, args.alpha, args.cmap
            )
            file = dest.with_suffix(f".{fmt}")
            written.append({
                "image": path, "method": label, "file": str(file),
                "target": {"index": t, "label": backbone.labels[t]},
                "predictions": [asdict(p) for p in preds],
            })  # fmt: skip
            if not args.json:
                top = ", ".join(f"{p.label} {p.probability:.1%}" for p in preds)
                print(f"{file}: {label} for {backbone.labels[t]!r} ({t}); top: {top}")
        sheet.append((label, res.maps[0]))
    if args.sheet:
        from service.core.imageio import save_image
        from service.core.saliency.render import contact_sheet

        save_image(
            contact_sheet(images[0], sheet, columns=4, alpha=args.alpha, cmap=args.cmap), args.sheet, 85
        )
        if not args.json:
            print(f"contact sheet: {args.sheet}")
    if args.json:
        print_json({"backbone": backbone.name, "maps": written, "sheet": args.sheet})
    return 0


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in label).strip("_")


def _report_images(paths: list[str], limits: Any) -> tuple[list[str], list[Any]]:
    from service.core.imageio import load_image

    if paths:
        return [Path(p).name for p in paths], [load_image(p, limits) for p in paths]
    try:
        from skimage import data
    except ImportError:
        raise InvalidArgument(
            "Give image files: the default photos come from scikit-image, not installed."
        ) from None
    return list(REPORT_IMAGES), [getattr(data, n)() for n in REPORT_IMAGES]


def run_report(args: argparse.Namespace) -> int:
    from service.core.saliency.faithfulness import CurveOptions, evaluate_faithfulness
    from service.core.saliency.report import faithfulness_table, sanity_table
    from service.core.saliency.sanity import cascading_randomisation, stage_label

    settings, backbone = _backbone(args)
    names, images = _report_images(args.images, settings.image_limits())
    blocks = [f"Images: {', '.join(names)}; backbone {backbone.name}; {args.size} px."]
    doc: dict[str, Any] = {"images": names, "backbone": backbone.name, "size": args.size}
    if not args.no_faithfulness:
        methods = [*_methods(args.methods)]
        if args.methods == "all":
            methods.append("integrated_gradients[baseline=blur]")
        with progress_bar("faithfulness", len(images) * (len(methods) + 2)) as bar:
            rows = evaluate_faithfulness(
                backbone, images, methods, args.size, CurveOptions(steps=args.steps), progress=bar
            )
        blocks.append(faithfulness_table(rows, args.steps))
        doc["faithfulness"] = {"steps": args.steps, "rows": [asdict(r) for r in rows]}
    if not args.no_sanity:
        stages = [int(s) for s in args.stages.split(",") if s.strip()]
        methods = _methods(args.sanity_methods)
        with progress_bar("sanity", (len(stages) + 1) * len(methods)) as bar:
            srows = cascading_randomisation(backbone, images, methods, stages, args.size, progress=bar)
        blocks.append(sanity_table(backbone, srows, stages))
        doc["sanity"] = {
            "stages": [{"top_layers": n, "label": stage_label(backbone, n)} for n in stages],
            "rows": [asdict(r) for r in srows],  # correlations: one per stage, in that order
        }
    text = "\n\n".join(blocks) + "\n"
    if args.json:
        print_json(doc)
    else:
        sys.stdout.write(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0
