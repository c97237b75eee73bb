"""``atelier attack IMAGE`` (FGSM / PGD adversarial examples) and ``atelier fool CLASS`` (fooling images)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.common import add_json_arg, print_json, progress_bar, settings_from_args

if TYPE_CHECKING:
    from service.core.backbones import Backbone
    from service.settings import Settings


def _target(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("attack", help="adversarial example by FGSM or PGD (L-infinity budget in 0-255 units)")
    a.add_argument("image", type=Path, metavar="IMAGE")
    a.add_argument("-o", "--output", type=Path, required=True, help="perturbed image (.png keeps it exact)")
    a.add_argument("--method", choices=("pgd", "fgsm"), default="pgd")
    a.add_argument(
        "--target", type=_target, default=None, help="ImageNet label or index (default: untargeted)"
    )
    a.add_argument(
        "--eps", type=float, default=2.0, help="largest change of any pixel value, 0-255 (default 2)"
    )
    a.add_argument("--steps", type=int, default=20, help="PGD iterations (default 20)")
    a.add_argument(
        "--step-size", type=float, default=None, help="PGD step, 0-255 (default 2.5 * eps / steps)"
    )
    a.add_argument("--no-random-start", action="store_true", help="PGD: start at the image itself")
    a.add_argument("--no-early-stop", action="store_true", help="PGD: run every step even after success")
    a.add_argument("--size", type=int, default=224, help="side of the classifier's centre crop (default 224)")
    a.add_argument(
        "--sheet", type=Path, default=None, help="also write original | perturbation | adversarial"
    )
    a.add_argument("--seed", type=int, default=0)
    add_json_arg(a, "the predictions before and after, success and steps")
    a.set_defaults(func=run_attack)

    f = sub.add_parser("fool", help="fooling image from noise (Nguyen et al. 2015) for an ImageNet class")
    f.add_argument("target", type=_target, metavar="CLASS", help="ImageNet label or index, e.g. 'goldfish'")
    f.add_argument("-o", "--output", type=Path, required=True)
    f.add_argument("--size", type=int, default=224)
    f.add_argument("--steps", type=int, default=200)
    f.add_argument("--step-size", type=float, default=2.0, help="0-255 units per step (default 2)")
    f.add_argument("--confidence", type=float, default=0.99, help="stop at this probability (default 0.99)")
    f.add_argument("--seed", type=int, default=0)
    add_json_arg(f, "the class, probability and steps")
    f.set_defaults(func=run_fool)


def _backbone(args: argparse.Namespace) -> tuple[Settings, Backbone]:
    import torch

    from service.core.backbones import get_backbone

    settings = settings_from_args(args)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    # The embedded classifier: the lecture's attacks are on EfficientNet-Lite0, whose weights always exist.
    return settings, get_backbone("efficientnet_lite0", settings.torch_device(), settings.backbone_weights())


def magnified_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_perturbation.png")


def run_attack(args: argparse.Namespace) -> int:
    from service.core.adversarial.common import AttackOptions
    from service.core.adversarial.fgsm import fgsm
    from service.core.adversarial.pgd import pgd
    from service.core.adversarial.sheet import attack_sheet
    from service.core.imageio import load_image, save_image

    settings, backbone = _backbone(args)
    image = load_image(args.image, settings.image_limits())
    options = AttackOptions(
        eps=args.eps, target=args.target, steps=args.steps, step_size=args.step_size,
        random_start=not args.no_random_start, early_stop=not args.no_early_stop, size=args.size,
        seed=args.seed,
    )  # fmt: skip
    attack = pgd if args.method == "pgd" else fgsm
    with progress_bar(args.method, 1 if args.method == "fgsm" else args.steps) as bar:
        result = attack(backbone, image, options, progress=bar)
    save_image(result.adversarial, args.output)
    save_image(result.magnified(), magnified_path(args.output))
    if args.sheet:
        save_image(attack_sheet(result, args.eps, args.method), args.sheet)
    if args.json:
        print_json({
            "image": str(args.image), "method": args.method, "eps": args.eps, "target": result.target,
            "success": result.success, "steps": result.steps, "linf": result.linf,
            "output": str(args.output), "perturbation": str(magnified_path(args.output)),
            "before": [asdict(p) for p in result.before], "after": [asdict(p) for p in result.after],
        })  # fmt: skip
        return 0
    print(f"{'before':<36}  after")
    for b, a in zip(result.before, result.after, strict=True):
        print(f"{b.probability:7.2%}  {b.label[:26]:<26}  {a.probability:7.2%}  {a.label}")
    outcome = "succeeded" if result.success else "failed"
    print(f"{args.method} {outcome} in {result.steps} step(s); L-inf {result.linf}/255 (budget {args.eps:g})")
    print(f"-> {args.output}, perturbation magnified -> {magnified_path(args.output)}")
    return 0


def run_fool(args: argparse.Namespace) -> int:
    from service.core.adversarial.fooling import FoolingOptions, fooling_image
    from service.core.imageio import save_image

    _, backbone = _backbone(args)
    options = FoolingOptions(
        size=args.size, steps=args.steps, step_size=args.step_size, confidence=args.confidence, seed=args.seed
    )
    with progress_bar("fool", args.steps) as bar:
        result = fooling_image(backbone, args.target, options, progress=bar)
    save_image(result.image, args.output)
    label = backbone.labels[result.target]
    if args.json:
        print_json({
            "target": result.target, "label": label, "probability": result.probability, "steps": result.steps,
            "output": str(args.output), "predictions": [asdict(p) for p in result.predictions],
        })  # fmt: skip
        return 0
    print(f"{label} at {result.probability:.2%} after {result.steps} step(s) -> {args.output}")
    return 0
