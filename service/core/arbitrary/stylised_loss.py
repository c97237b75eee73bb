"""The stylised-feature term of decoder training: teach a WCT decoder to decode *coloured* features, not
only a photo's own.

A decoder trained only to reconstruct photos (``train_decoder.ReconstructionLoss``) sees features from
the photo manifold; at serving time it gets features whitened and coloured with a painting's statistics,
which no photo has, and its output drifts back toward photo statistics: the painting's Gram matrices at
the deep taps are matched before decoding and lost after. This term closes that loop. A photo's features
``f`` get a training painting's per-channel mean and standard deviation (the AdaIN transform of Huang &
Belongie, ICCV 2017, arXiv:1703.06868: cheap, and well defined on a 16 x 16 feature map where a
240-channel covariance is not), clamped to the tap's ReLU6 range; the decoder paints them, and the frozen
encoder must find those features again in the painting:

    loss = mean((Lite0(decoder(f_s)) - f_s)^2) / mean(f_s^2),   f_s = sd_s * (f - mean_f) / sd_f + mean_s

This is the cycle consistency of the universal-style decoders' later work (e.g. Li et al., CVPR 2019,
*Learning Linear Transformations for Fast Arbitrary Style Transfer*, whose decoder is trained through the
transform). Only training-side paintings may be used (issue 20's rule): ``EVAL_PAINTINGS`` are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from service.core.backbones import Backbone
from service.core.errors import InvalidArgument
from service.core.imageio import load_image
from service.core.stylize.evaluate import resize_long_side

RELU6_MAX = 6.0  # the taps are ReLU6 outputs: coloured features outside 0..6 no encoder can produce
EPS = 1e-5


class PaintingStats:
    """Per-channel mean and standard deviation of each training painting at one tap."""

    def __init__(self, means: torch.Tensor, stds: torch.Tensor, names: Sequence[str]) -> None:
        self.means, self.stds, self.names = means, stds, tuple(names)  # (P, C) each

    @classmethod
    def from_files(
        cls, files: Sequence[Path], backbone: Backbone, tap: str, size: int, refused: Sequence[str]
    ) -> PaintingStats:
        if not files:
            raise InvalidArgument("The paintings folder has no images.")
        leaked = sorted({p.stem for p in files} & set(refused))
        if leaked:
            raise InvalidArgument(
                f"Held-out evaluation paintings may not train a decoder: {', '.join(leaked)}."
            )
        means, stds = [], []
        with torch.no_grad():
            for path in files:
                img = resize_long_side(load_image(path), size)
                x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255.0
                f = backbone.features(x.to(backbone.device), [tap])[tap][0]
                means.append(f.mean(dim=(1, 2)))
                stds.append(f.std(dim=(1, 2)))
        return cls(torch.stack(means), torch.stack(stds), [p.stem for p in files])

    def pick(self, seed: int, step: int, n: int) -> torch.Tensor:
        """``n`` painting indices for this step, from (seed, step) alone (a resumed run draws the same)."""
        digest = hashlib.sha256(f"{seed}:{step}:paintings".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
        return torch.randint(len(self.names), (n,), generator=gen)


def recolour(features: torch.Tensor, means: torch.Tensor, stds: torch.Tensor) -> torch.Tensor:
    """AdaIN: (N, C, h, w) features with each image's channel statistics swapped for (N, C) ``means`` and
    ``stds``, clamped to the ReLU6 range."""
    mu = features.mean(dim=(2, 3), keepdim=True)
    sd = features.std(dim=(2, 3), keepdim=True) + EPS
    out = (features - mu) / sd * stds[:, :, None, None] + means[:, :, None, None]
    return out.clamp(0.0, RELU6_MAX)
