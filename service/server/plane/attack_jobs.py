"""Adversarial jobs as slow-path work: FGSM (Goodfellow et al. 2015), PGD (Madry et al. 2018) and fooling
images from noise (Nguyen et al. 2015), on the embedded EfficientNet-Lite0 classifier.

``attack_job`` validates a request once (options parsed strictly, target resolved, image decoded) and
returns a ``JobWork``: the closure for the in-process manager and the same request as a ``JobSpec``
(kind ``attack``) for the shared queue, where a worker rebuilds the closure through ``prepare_attack``
(``slow_jobs.work_from_spec``) with the same checks. So an attack runs on a worker like a Gatys job, and
any replica watches or cancels it.

The result is the adversarial 224 px crop (PNG: lossless, or the budget would not hold), and
``JobOutput.extra`` is the outcome as JSON values plus one bytes value: ``method``, ``target``,
``success``, ``steps``, ``linf``, top-k ``before`` and ``after`` (lists of ``{"index", "label",
"probability"}``) and, for FGSM and PGD, the magnified ``perturbation`` PNG. Plain values on purpose: the
shared queue stores the outcome as they are (``redis_codec.encode_result``: the JSON part in the job's
metadata, the perturbation beside the image in the one result value), so a job read from Redis carries
exactly the outcome an in-process one does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from service.core.errors import InvalidArgument, InvalidImage, quoted
from service.core.imageio import MIME_TYPES, decode_image, encode_image
from service.core.progress import CancelToken, ProgressCallback
from service.server.jobs.job import JobFunction, JobOutput
from service.server.jobs.work import JobSpec, JobWork
from service.server.plane.options import build_options

if TYPE_CHECKING:
    from service.core.classify import Prediction
    from service.server.plane.slow_jobs import SlowConfig

ATTACK_METHODS: tuple[str, ...] = ("fgsm", "pgd", "fooling")
ATTACK_MODEL = "efficientnet_lite0"  # the embedded classifier is the one attacked
# The server sets these itself: the target arrives as its own field, the crop is the classifier's.
ATTACK_BLOCKED: tuple[str, ...] = ("target", "size")
# Fooling images start from noise at the classifier's own input size; only ``size`` is fixed.
FOOLING_BLOCKED: tuple[str, ...] = ("size",)


def predictions_json(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    return [{"index": p.index, "label": p.label, "probability": float(p.probability)} for p in predictions]


def _classifier(cfg: SlowConfig) -> Any:
    from service.core.backbones import get_backbone

    return get_backbone(ATTACK_MODEL, cfg.device, cfg.backbone_weights)


def _seed(seed: int) -> None:
    if not 0 <= seed < 2**32:
        raise InvalidArgument(f"seed must be in 0..{2**32 - 1}, got {seed}.")


def prepare_attack(
    cfg: SlowConfig,
    image: bytes | None,
    method: str,
    target: int | str | None,
    options: Mapping[str, Any] | None,
) -> JobFunction:
    """The job function of one attack; bad input raises here, before any job exists."""
    from service.core.adversarial.common import AttackOptions, check_options, resolve_target
    from service.core.adversarial.fgsm import fgsm
    from service.core.adversarial.pgd import pgd

    if method not in ATTACK_METHODS:
        raise InvalidArgument(f"Unknown attack {quoted(method)}; use one of {', '.join(ATTACK_METHODS)}.")
    if method == "fooling":
        return _prepare_fooling(cfg, target, options)  # from noise: an image, if sent, is not read
    if not image:
        raise InvalidImage(
            f"The {method} attack needs an image to perturb: send it as the request body or the "
            "form field 'image' (only method 'fooling' starts from noise)."
        )
    opts = build_options(AttackOptions, options, blocked=ATTACK_BLOCKED, what=f"attack {method!r}")
    _seed(opts.seed)
    net = _classifier(cfg)
    opts.target = resolve_target(net, target)
    check_options(opts)
    img = decode_image(image, cfg.limits)
    attack = fgsm if method == "fgsm" else pgd

    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        res = attack(net, img, opts, progress=progress, cancel=cancel)
        extra = {
            "method": method, "target": res.target, "success": bool(res.success), "steps": int(res.steps),
            "linf": int(res.linf), "before": predictions_json(res.before),
            "after": predictions_json(res.after), "perturbation": encode_image(res.magnified(), "png"),
        }  # fmt: skip
        h, w = res.adversarial.shape[:2]
        return JobOutput(encode_image(res.adversarial, "png"), MIME_TYPES["png"], int(w), int(h), extra)

    return run


def _prepare_fooling(
    cfg: SlowConfig, target: int | str | None, options: Mapping[str, Any] | None
) -> JobFunction:
    from service.core.adversarial.common import resolve_target
    from service.core.adversarial.fooling import FoolingOptions, check_fooling_options, fooling_image

    opts = build_options(FoolingOptions, options, blocked=FOOLING_BLOCKED, what="attack 'fooling'")
    _seed(opts.seed)
    check_fooling_options(opts)
    net = _classifier(cfg)
    index = resolve_target(net, target)
    if index is None:
        raise InvalidArgument("A fooling image needs a target class (an ImageNet index or label).")

    def run(cancel: CancelToken, progress: ProgressCallback) -> JobOutput:
        res = fooling_image(net, index, opts, progress=progress, cancel=cancel)
        extra = {
            "method": "fooling", "target": res.target, "success": bool(res.probability >= opts.confidence),
            "steps": int(res.steps), "linf": 0, "before": [], "after": predictions_json(res.predictions),
        }  # fmt: skip
        h, w = res.image.shape[:2]
        return JobOutput(encode_image(res.image, "png"), MIME_TYPES["png"], int(w), int(h), extra)

    return run


def attack_job(
    cfg: SlowConfig,
    image: bytes | None,
    method: str,
    target: int | str | None,
    options: Mapping[str, Any] | None,
) -> JobWork:
    """``prepare_attack`` plus the same request as data, for the shared queue (``jobs/work.py``)."""
    fn = prepare_attack(cfg, image, method, target, options)
    params = {"method": method, "target": target, "options": dict(options or {})}
    images = {"image": [image]} if image and method != "fooling" else {}
    return JobWork(JobSpec("attack", params, images), fn)


def attack_from_spec(cfg: SlowConfig, spec: JobSpec) -> JobFunction:
    p = spec.params
    return prepare_attack(cfg, spec.image("image"), str(p["method"]), p.get("target"), p.get("options"))
