"""Maximally activating patches: for one channel of one tap, the image regions (receptive fields) that
excite it most over a collection of images (Zeiler & Fergus 2014, "Visualizing and Understanding
Convolutional Networks", arXiv:1311.2901, Sec. 4; Girshick et al. 2014, "Rich feature hierarchies",
Fig. 3).

Each image contributes its single strongest position, so the top-k shows k different images. The patch
is the unit's receptive field clipped to the image: the bounding box of the input pixels with a
non-zero gradient of that unit, so it is exact for any architecture (padding and strides included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from service.core.backbones.base import Backbone
from service.core.errors import InvalidArgument
from service.core.progress import CancelToken, ProgressCallback
from service.core.render.common import Stepper, check_image, check_render_size, releasing_memory
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side


@dataclass
class PatchOptions:
    size: int = 224  # images are resized so their longer side is this
    top_k: int = 16
    max_pixels: int | None = None  # refuse input images with more pixels than this


@dataclass(frozen=True)
class Patch:
    image_index: int  # position in the input sequence
    activation: float  # the unit's value
    box: tuple[int, int, int, int]  # (top, left, bottom, right) in the resized image
    crop: np.ndarray  # (h, w, 3) uint8 receptive field


def _receptive_box(
    backbone: Backbone, x: torch.Tensor, tap: str, channel: int, y: int, xx: int
) -> tuple[int, int, int, int]:
    probe = x.detach().clone().requires_grad_(True)
    act = backbone.features(probe, [tap])[tap]
    (grad,) = torch.autograd.grad(act[0, channel, y, xx], probe)
    support = grad[0].abs().sum(dim=0) > 0
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    if rows.numel() == 0:  # a saturated ReLU6 path: fall back to the unit's stride cell
        sy, sx = x.shape[2] / act.shape[2], x.shape[3] / act.shape[3]
        return (int(y * sy), int(xx * sx), math.ceil((y + 1) * sy), math.ceil((xx + 1) * sx))
    return (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


@releasing_memory
def max_activating_patches(
    backbone: Backbone,
    images: Iterable[np.ndarray],
    tap: str,
    channel: int,
    options: PatchOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    total: int | None = None,
) -> list[Patch]:
    """The ``top_k`` strongest responses of ``tap``'s ``channel``, strongest first (one per image).

    ``images`` may be a lazy iterable (a folder read on demand); ``total`` sizes the progress reports.
    """
    o = options or PatchOptions()
    backbone.check_taps([tap])
    if o.top_k < 1 or o.size < 16:
        raise InvalidArgument(f"top_k must be >= 1 and size >= 16, got {o.top_k} and {o.size}.")
    device = backbone.device
    stepper = Stepper(total or 0, progress, cancel)
    best: list[tuple[float, int, int, int, np.ndarray]] = []  # (value, image index, y, x, resized image)
    for index, image in enumerate(images):
        stepper.begin()
        check_image(image, f"image {index + 1}")
        check_render_size(image.shape[0], image.shape[1], None, o.max_pixels, f"image {index + 1}")
        h, w = scale_to_side(image.shape[0], image.shape[1], o.size)
        with torch.no_grad():
            x = resize_tensor(image_to_tensor(image, device), h, w)
            act = backbone.features(x, [tap])[tap]
            if not 0 <= channel < act.shape[1]:
                raise InvalidArgument(
                    f"channel {channel} is out of range: {tap} has {act.shape[1]} channels."
                )
            amap = act[0, channel]
            flat = int(amap.argmax())
            value = float(amap.flatten()[flat])
        small = (x[0].permute(1, 2, 0).mul(255).round().to(torch.uint8)).cpu().numpy()
        best.append((value, index, flat // amap.shape[1], flat % amap.shape[1], small))
        best.sort(key=lambda b: -b[0])
        del best[o.top_k :]
        stepper.total = max(stepper.total, index + 1)
        stepper.end({"best": best[0][0]})
    if not best:
        raise InvalidArgument("No images were given.")
    patches = []
    for value, index, y, xx, small in best:
        x = image_to_tensor(small, device)
        top, left, bottom, right = _receptive_box(backbone, x, tap, channel, y, xx)
        crop = np.ascontiguousarray(small[top:bottom, left:right])
        patches.append(Patch(index, value, (top, left, bottom, right), crop))
    return patches


def patch_grid(
    patches: list[Patch], tile: int = 96, columns: int | None = None, padding: int = 2
) -> np.ndarray:
    """Lay the patches out strongest first, each resized to ``tile`` x ``tile``, on a white (H, W, 3) image."""
    if not patches:
        raise InvalidArgument("No patches to show.")
    cols = columns or math.ceil(math.sqrt(len(patches)))
    rows = math.ceil(len(patches) / cols)
    grid = np.full((rows * (tile + padding) + padding, cols * (tile + padding) + padding, 3), 255, np.uint8)
    for i, p in enumerate(patches):
        r, c = divmod(i, cols)
        y, x = padding + r * (tile + padding), padding + c * (tile + padding)
        grid[y : y + tile, x : x + tile] = np.asarray(
            Image.fromarray(p.crop).resize((tile, tile), Image.Resampling.BICUBIC)
        )
    return grid
