"""Perceptual loss for training transform networks (Johnson, Alahi & Fei-Fei 2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution", arXiv:1603.08155), with the style term of Gatys, Ecker &
Bethge 2016 ("Image Style Transfer Using Convolutional Neural Networks", CVPR): Gram matrices of a
pretrained CNN's activations.

The features come from ``service.core.backbones`` taps. Each style layer's squared Gram error is divided by
the squared mean magnitude of the target Gram, and the content error by the mean square of the target
features, so every term starts near 1 whatever the layer's scale; the weights then mean the same across
backbones and layers.

Opt-in levers against the fast nets' crosshatch (docs/training/ablation.md): ``shift_both`` translates
the output and the content by one random offset before the backbone, and ``swag`` smooths the deep taps
with ``softmax3d`` (SWAG). A ``pixel`` weight adds a pixel MSE to the content photo, which with no style
image is the identity warm start every style can start from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.render.losses import softmax3d


class _Gram(torch.autograd.Function):
    """``F @ F^T`` for (B, C, N) ``F``, with the gradient ``(G' + G'^T) @ F`` in one batched product.

    Autograd's own backward of ``bmm(f, f.transpose(1, 2))`` runs two products, one of them on the
    transposed (B, N, C) layout; measured on the 2-core CPU at a Lite0 style tap of a 256 px batch of 4
    ((4, 96, 16384)), forward and backward took 174 ms that way and 63 ms this way (same gradient within
    5e-7 relative), about a fifth of a training step over the five taps."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, f: Tensor) -> Tensor:
        ctx.save_for_backward(f)
        return torch.bmm(f, f.transpose(1, 2))

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (f,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.bmm(grad + grad.transpose(1, 2), f)


def gram_matrix(features: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by C*H*W (computed in float32 under autocast)."""
    b, c, h, w = features.shape
    f = features.float().reshape(b, c, h * w)
    gram: Tensor = _Gram.apply(f)
    return gram / (c * h * w)


def total_variation(x: Tensor) -> Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV) of a (B, C, H, W) batch."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean()
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()
    return dh + dw


def clip_as_served(x: Tensor) -> Tensor:
    """``x`` clipped to [0, 1] in the forward pass, as the served image is, with the identity gradient
    (straight-through), so pixels outside the range still learn which way to move."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


def shift_both(stylized: Tensor, content: Tensor, dy: int, dx: int) -> tuple[Tensor, Tensor]:
    """Both batches rolled (circularly) by the same ``(dy, dx)`` pixels.

    The backbone has a total stride of 32 (EfficientNet-Lite0), so each output pixel meets the loss
    network's sampling grid at one fixed phase of 32; a transform net can then lower the loss with a
    pattern locked to that grid (the period-2/4 crosshatch). A random offset in 0..31 each step makes the
    loss the same for every phase, so such a pattern no longer pays (Odena et al. 2016, "Deconvolution and
    Checkerboard Artifacts", on artefacts that come from the gradients). The same offset for both keeps
    the content term a comparison of corresponding pixels.
    """
    return stylized.roll((dy, dx), dims=(2, 3)), content.roll((dy, dx), dims=(2, 3))


def out_of_range(x: Tensor) -> Tensor:
    """Mean distance of the pixels outside [0, 1] from that range (0 when every pixel is inside)."""
    return (F.relu(x - 1.0) + F.relu(-x)).float().mean()


@dataclass(frozen=True)
class LossWeights:
    content: float = 1.0
    style: float = 10.0
    tv: float = 1e-4
    range: float = 1.0  # out-of-range penalty, used only when the loss clips the output
    pixel: float = 0.0  # pixel MSE to the content photo (the identity warm start); 0: not computed

    def __post_init__(self) -> None:
        for name in ("content", "style", "tv", "range", "pixel"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"The {name} weight must be >= 0, got {getattr(self, name)}.")


class PerceptualLoss(nn.Module):
    """Content + style + total-variation loss against one style image.

    ``style`` is a (1, 3, H, W) batch in [0, 1]; its Gram matrices are computed once here. ``forward``
    takes the stylised batch and the content batch, both (B, 3, H, W) in [0, 1], and returns the weighted
    terms and their sum under the keys ``content``, ``style``, ``tv``, ``range``, ``pixel`` and ``total``.
    ``style=None`` (only with a zero style weight) drops the style term: the identity warm start.

    ``clip_output``: the backbone sees the stylised batch clipped to [0, 1] (``clip_as_served``), and
    ``range`` penalises the pixels outside it. Without the clip, a transform net learns to paint values far
    outside [0, 1] (values from -1449 to +2284 on the 0..255 scale in the shipped mobile nets): the
    backbone's features respond to them in ways no real pixel can, which lowers the training loss, but the
    served image is clipped, so training optimised an image that is never served. With
    ``clip_output=False`` (how the first shipped nets were trained) ``range`` is zero and the total is as
    before.

    The loss runs ``backbone.for_loss()``: the same features, computed without the frozen net's batch
    norms (folded into its convolutions), about a sixth of a CPU training step.

    ``batch_gram``: the style term compares one Gram of the whole batch (the crops' features side by
    side) with the painting's, instead of each crop's. A 256 px crop of sky cannot hold a painting's
    statistics, but a picture's do come from all its regions together: the evaluation measures the Gram
    of a whole 512 px render, about four crops' area. The content and structure terms stay per crop.

    ``teacher`` (distillation, ``service.core.stylize.distill``): a (B, 3, H, W) batch in [0, 1] of
    renders to pull the output toward; ``terms["teacher"]`` is then the mean over the taps of the feature
    MSE to them, each over the render's mean square feature (0 for the teacher's own picture, about 1 for
    an unrelated one). It is unweighted and not in the total.

    ``swag``: the taps whose feature maps are at least ``swag_min_stride`` times smaller than the input
    (the deep ones; for Lite0 ``block5.expand``, ``block8.expand`` and the content tap ``block7``) pass
    through ``softmax3d`` before their Gram and content terms (SWAG, arXiv:2104.05623). Off by default.
    """

    def __init__(
        self,
        backbone: Backbone,
        style: Tensor | None,
        weights: LossWeights,
        style_taps: Sequence[str] | None = None,
        content_tap: str | None = None,
        clip_output: bool = True,
        swag: bool = False,
        swag_min_stride: int = 8,
        batch_gram: bool = False,
    ) -> None:
        super().__init__()
        backbone = backbone.for_loss()  # frozen: Lite0's batch norms folded into its convolutions
        self.backbone = backbone
        self.weights = weights
        self.clip_output = clip_output
        self.batch_gram = batch_gram
        self.style_taps = tuple(style_taps or backbone.default_style_taps) if style is not None else ()
        self.content_tap = content_tap or backbone.default_content_tap
        if style is None and weights.style > 0:
            raise InvalidArgument("A style weight above 0 needs a style image.")
        if (style is not None and not self.style_taps) or not self.content_tap:
            raise InvalidArgument(f"Backbone {backbone.name} has no default taps; name them explicitly.")
        backbone.check_taps([*self.style_taps, self.content_tap])
        self.swag_taps = self._deep_taps(swag_min_stride) if swag else frozenset()
        grams: list[Tensor] = []
        if style is not None:
            with torch.no_grad():
                feats = backbone.features(style, self.style_taps)
                grams = [gram_matrix(self._smooth(t, feats[t])) for t in self.style_taps]
        # Buffers, so .to(device) moves them and they never receive gradients.
        for i, g in enumerate(grams):
            self.register_buffer(f"gram_{i}", g)
            self.register_buffer(f"gram_scale_{i}", g.abs().mean().square().clamp_min(1e-12))

    @torch.no_grad()
    def _deep_taps(self, min_stride: int) -> frozenset[str]:
        """Taps at least ``min_stride`` times coarser than the input, found from one probe image's shapes."""
        side = 64 * min_stride
        probe = torch.full((1, 3, side, side), 0.5, device=self.backbone.device)
        feats = self.backbone.features(probe, [*self.style_taps, self.content_tap])
        return frozenset(t for t, f in feats.items() if f.shape[-1] * min_stride <= side)

    def _smooth(self, tap: str, features: Tensor) -> Tensor:
        return softmax3d(features) if tap in self.swag_taps else features

    def forward(self, stylized: Tensor, content: Tensor, teacher: Tensor | None = None) -> dict[str, Tensor]:
        raw = stylized
        if self.clip_output:
            stylized = clip_as_served(raw)
        with torch.no_grad():
            target = self.backbone.features(content, [self.content_tap])[self.content_tap]
            target = self._smooth(self.content_tap, target).float()
        feats = self.backbone.features(stylized, [*self.style_taps, self.content_tap])
        if teacher is not None:  # distillation: the same features against the teacher's render's
            with torch.no_grad():
                taught = self.backbone.features(teacher, list(feats))
            distance = [
                F.mse_loss(feats[t].float(), taught[t].float())
                / taught[t].float().square().mean().clamp_min(1e-12)
                for t in feats
            ]
            teacher_distance = torch.stack(distance).mean()
        got = self._smooth(self.content_tap, feats[self.content_tap]).float()
        content_loss = F.mse_loss(got, target) / target.square().mean().clamp_min(1e-12)
        style_loss = stylized.new_zeros((), dtype=torch.float32)
        for i, tap in enumerate(self.style_taps):
            g = gram_matrix(self._smooth(tap, feats[tap]))
            if self.batch_gram:  # the Gram of the crops side by side is the mean of their Grams
                g = g.mean(0, keepdim=True)
            gt: Tensor = getattr(self, f"gram_{i}")
            scale: Tensor = getattr(self, f"gram_scale_{i}")
            style_loss = style_loss + F.mse_loss(g, gt.expand_as(g)) / scale
        tv = total_variation(stylized.float())
        w = self.weights
        terms = {"content": w.content * content_loss, "style": w.style * style_loss, "tv": w.tv * tv}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        if self.clip_output:
            terms["range"] = w.range * out_of_range(raw)
            terms["total"] = terms["total"] + terms["range"]
        else:
            terms["range"] = torch.zeros((), device=raw.device)
        if w.pixel > 0:
            # Against the served (clipped) image when clipping: the warm start copies what is served.
            terms["pixel"] = w.pixel * F.mse_loss(stylized.float(), content.float())
            terms["total"] = terms["total"] + terms["pixel"]
        else:
            terms["pixel"] = torch.zeros((), device=raw.device)
        if teacher is not None:  # unweighted: the caller weighs it and adds it to the total
            terms["teacher"] = teacher_distance
        return terms
