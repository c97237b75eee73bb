"""Registry of transform-network architectures for fast style transfer.

Every network maps an RGB batch in [0, 255], shape (B, 3, H, W), to an RGB batch of the same shape in
roughly [0, 255] (unclamped while training; the export wrapper clamps). ``total_stride`` is the factor the
input height and width must be divisible by; :class:`PaddedTransform` reflect-pads any size up to it and
crops back, so exported graphs accept every H, W >= 16.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from service.core.errors import InvalidArgument, UnknownModel


class TransformNet(nn.Module):
    """Base class: subclasses set ``arch`` and ``total_stride`` and implement ``forward``."""

    arch: str = ""
    total_stride: int = 1


_REGISTRY: dict[str, Callable[[], TransformNet]] = {}


def register_net(arch: str) -> Callable[[Callable[[], TransformNet]], Callable[[], TransformNet]]:
    """Decorator registering a zero-argument factory under ``arch``; duplicate names are a bug."""

    def wrap(factory: Callable[[], TransformNet]) -> Callable[[], TransformNet]:
        if arch in _REGISTRY:
            raise ValueError(f"transform net {arch!r} registered twice")
        _REGISTRY[arch] = factory
        return factory

    return wrap


def _load_builtin() -> None:
    # Imported for their @register_net side effect; done lazily to avoid an import cycle.
    from service.core.stylize.nets import johnson, johnson2, mobile, mobile2  # noqa: F401


def list_nets() -> list[str]:
    """Registered architecture names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def build_net(arch: str) -> TransformNet:
    """A freshly initialised network of architecture ``arch`` (``UnknownModel`` lists the known ones)."""
    _load_builtin()
    try:
        factory = _REGISTRY[arch]
    except KeyError:
        raise UnknownModel("architecture", arch, _REGISTRY) from None
    return factory()


class PaddedTransform(nn.Module):
    """Serving wrapper: reflect-pad H, W up to a multiple of the net's stride, run, crop back, clamp.

    The padding amounts are computed from the input's shape, so they stay symbolic in an exported graph.
    """

    def __init__(self, net: TransformNet) -> None:
        super().__init__()
        self.net = net
        self.stride = net.total_stride

    def forward(self, x: Tensor) -> Tensor:  # (N, 3, H, W) in [0, 255]
        h, w = x.shape[-2], x.shape[-1]
        pad_h = (self.stride - h % self.stride) % self.stride
        pad_w = (self.stride - w % self.stride) % self.stride
        y = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
        y = self.net(y)[:, :, :h, :w]
        return y.clamp(0.0, 255.0)


def check_input_size(height: int, width: int, minimum: int = 16) -> None:
    """Transform nets need at least ``minimum`` pixels per side (reflection padding and stride)."""
    if height < minimum or width < minimum:
        raise InvalidArgument(
            f"Image is {width}x{height}; fast style transfer needs at least {minimum} px per side."
        )


__all__ = ["PaddedTransform", "TransformNet", "build_net", "check_input_size", "list_nets", "register_net"]
