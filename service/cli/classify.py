"""``atelier classify IMAGE [IMAGE...]``: ImageNet top-k with the chosen backbone."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from service.cli.common import add_backbone_arg, add_json_arg, print_json, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="print ImageNet labels with probabilities")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, TIFF, GIF)")
    p.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    add_backbone_arg(p)
    add_json_arg(p, "a list with one {image, predictions} object per image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.core.backbones import load_backbone
    from service.core.classify import classify
    from service.core.imageio import load_image

    settings = settings_from_args(args)
    limits = settings.image_limits()
    images = [
        load_image(path, limits) for path in args.images
    ]  # fail fast on a bad file, before loading the net
    backbone = load_backbone(args.backbone or settings.default_backbone, "cpu", settings.backbone_weights())
    results = classify(backbone, images, args.top)
    if args.json:
        print_json([
            {"image": path, "backbone": backbone.name, "predictions": [asdict(p) for p in preds]}
            for path, preds in zip(args.images, results, strict=True)
        ])  # fmt: skip
        return 0
    for path, preds in zip(args.images, results, strict=True):
        if len(args.images) > 1:
            print(f"{path}:")
        for pred in preds:
            print(f"{pred.probability:7.2%}  {pred.label}  ({pred.index})")
    return 0
