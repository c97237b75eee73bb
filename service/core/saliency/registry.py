"""The saliency methods by name (sorted, duplicates refused) and their parameter dataclasses."""

from __future__ import annotations

from service.core.errors import InvalidArgument
from service.core.saliency.base import Method
from service.core.saliency.gradcam import CamOptions, gradcam, gradcam_pp
from service.core.saliency.gradient import GradientOptions, gradient
from service.core.saliency.gradient_x_input import GradientXInputOptions, gradient_x_input
from service.core.saliency.guided_backprop import GuidedBackpropOptions, guided_backprop
from service.core.saliency.guided_gradcam import guided_gradcam
from service.core.saliency.integrated_gradients import (
    IntegratedGradientsOptions,
    ig_ticks,
    integrated_gradients,
)
from service.core.saliency.occlusion import OcclusionOptions, occlusion, occlusion_ticks
from service.core.saliency.rise import RiseOptions, rise, rise_ticks
from service.core.saliency.smoothgrad import SmoothGradOptions, smoothgrad, smoothgrad_ticks

_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in _REGISTRY:
        raise ValueError(f"saliency method {method.name!r} is registered twice")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method called ``name``; ``InvalidArgument`` listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidArgument(
            f"Unknown saliency method {name!r}. Available: {', '.join(_REGISTRY)}."
        ) from None


for _m in (
    Method("gradient", "Gradient (Simonyan et al. 2014)", GradientOptions, gradient, clip_percentile=99.0),
    Method(
        "gradient_x_input",
        "Gradient x input (Shrikumar et al. 2016)",
        GradientXInputOptions,
        gradient_x_input,
        clip_percentile=99.0,
    ),
    Method(
        "guided_backprop",
        "Guided backprop (Springenberg et al. 2015)",
        GuidedBackpropOptions,
        guided_backprop,
        clip_percentile=99.0,
    ),
    Method(
        "smoothgrad",
        "SmoothGrad (Smilkov et al. 2017)",
        SmoothGradOptions,
        smoothgrad,
        smoothgrad_ticks,
        clip_percentile=99.0,
    ),
    Method(
        "integrated_gradients",
        "Integrated gradients (Sundararajan et al. 2017)",
        IntegratedGradientsOptions,
        integrated_gradients,
        ig_ticks,
        clip_percentile=99.0,
    ),
    Method("gradcam", "Grad-CAM (Selvaraju et al. 2017)", CamOptions, gradcam),
    Method("gradcam_pp", "Grad-CAM++ (Chattopadhyay et al. 2018)", CamOptions, gradcam_pp),
    Method(
        "guided_gradcam",
        "Guided Grad-CAM (Selvaraju et al. 2017)",
        CamOptions,
        guided_gradcam,
        lambda options, batch, height, width: 2,
        clip_percentile=99.0,
    ),
    Method("occlusion", "Occlusion (Zeiler & Fergus 2014)", OcclusionOptions, occlusion, occlusion_ticks),
    Method("rise", "RISE (Petsiuk et al. 2018)", RiseOptions, rise, rise_ticks, normalisation="minmax"),
):
    register(_m)

METHODS: tuple[str, ...] = tuple(_REGISTRY)


def parse_method_spec(spec: str) -> tuple[str, dict[str, object]]:
    """``"integrated_gradients[baseline=blur,steps=64]"`` -> (name, params); a plain name has no params.

    Lets a report or a command line name a method variant in one string; values stay strings and are
    coerced by the method's options.
    """
    text = spec.strip()
    if "[" not in text:
        get_method(text)
        return text, {}
    if not text.endswith("]"):
        raise InvalidArgument(f"Method spec {spec!r} must look like name[key=value,...].")
    name, _, body = text[:-1].partition("[")
    get_method(name)
    params: dict[str, object] = {}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InvalidArgument(f"Method spec {spec!r}: expected key=value, got {item!r}.")
        params[key.strip()] = value.strip()
    return name, params
