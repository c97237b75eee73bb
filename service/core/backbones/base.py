"""What every backbone offers: preprocessing, classification and named feature taps.

Algorithms (Gatys, DeepDream, saliency, perceptual losses) work on images in [0, 1] RGB, shape
(B, 3, H, W), and ask a backbone for the activations at named *taps*. ``features`` runs the network only
as far as the deepest requested tap, so a style loss that needs early layers does not pay for the head.

Each tap is also the output of one ``nn.Module`` (``tap_module``), so hook-based methods (guided
backprop, Grad-CAM) can attach forward/backward hooks to exactly the module a tap names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from service.core.errors import InvalidArgument


class Backbone(nn.Module):
    """Base class: subclasses fill ``_stages`` (ordered (tap name, module)) and ``normalize``."""

    name: str = "backbone"
    #: Native training resolution (square side) of the classifier.
    input_size: int = 224
    #: Default taps for perceptual losses; algorithms may override them.
    default_style_taps: tuple[str, ...] = ()
    default_content_tap: str = ""
    #: The tap used by Grad-CAM by default (last convolutional feature map).
    default_cam_tap: str = ""

    def __init__(self) -> None:
        super().__init__()
        self._tap_order: list[str] = []
        self._tap_modules: dict[str, nn.Module] = {}

    # -- tap registry ---------------------------------------------------------------------------------
    def _register_tap(self, name: str, module: nn.Module) -> None:
        if name in self._tap_modules:
            raise ValueError(f"duplicate tap name {name!r}")
        self._tap_order.append(name)
        self._tap_modules[name] = module

    @property
    def tap_names(self) -> tuple[str, ...]:
        """All tap names in forward order."""
        return tuple(self._tap_order)

    def tap_module(self, name: str) -> nn.Module:
        """The module whose forward output is the tap ``name`` (for hooks)."""
        try:
            return self._tap_modules[name]
        except KeyError:
            raise InvalidArgument(
                f"Unknown tap {name!r} for backbone {self.name}. Taps: {', '.join(self._tap_order)}"
            ) from None

    def check_taps(self, taps: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(taps))
        for t in wanted:
            self.tap_module(t)  # raises InvalidArgument for unknown names
        return wanted

    def for_loss(self) -> Backbone:
        """The same network for a frozen loss (a training objective): the same features, computed as
        cheaply as this backbone knows how. ``self`` unless a subclass folds something."""
        return self

    # -- computation ----------------------------------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """Map an RGB batch in [0, 1] to the network's input space."""
        raise NotImplementedError

    def run_taps(self, z: Tensor, taps: Sequence[str]) -> dict[str, Tensor]:
        """Run on a *normalised* batch and return the requested taps (stops after the deepest one)."""
        raise NotImplementedError

    def features(self, x: Tensor, taps: Iterable[str]) -> dict[str, Tensor]:
        """Activations at ``taps`` for an RGB batch ``x`` in [0, 1], shape (B, 3, H, W)."""
        wanted = self.check_taps(taps)
        if x.ndim != 4 or x.shape[1] != 3:
            raise InvalidArgument(f"Expected a (B, 3, H, W) batch, got shape {tuple(x.shape)}.")
        return self.run_taps(self.normalize(x), wanted)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, num_classes) for an RGB batch in [0, 1]."""
        return self.features(x, ["logits"])["logits"]

    @property
    def labels(self) -> list[str]:
        from service.core.labels import imagenet_labels

        return imagenet_labels()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
