"""Conversions between (H, W, 3) uint8 images and (B, 3, H, W) float tensors in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from service.core.errors import InvalidArgument


def image_to_tensor(image: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgument(f"Expected an (H, W, 3) image, got shape {image.shape}.")
    # Decoded or bundled arrays may be read-only; torch warns on (and must not write to) those.
    arr = np.ascontiguousarray(image)
    if not arr.flags.writeable:
        arr = arr.copy()
    t = torch.from_numpy(arr).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def images_to_batch(images: Sequence[np.ndarray], device: str | torch.device = "cpu") -> Tensor:
    """Stack same-sized (H, W, 3) uint8 images into (B, 3, H, W) float32 in [0, 1]."""
    if not images:
        raise InvalidArgument("Expected at least one image.")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise InvalidArgument(f"Images in one batch must share a size, got {sorted(shapes)}.")
    return torch.cat([image_to_tensor(im, device) for im in images], dim=0)


def tensor_to_image(t: Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> (H, W, 3) uint8 (clipped, rounded)."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise InvalidArgument(f"Expected a single image, got a batch of {t.shape[0]}.")
        t = t[0]
    arr = t.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def resize_tensor(x: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize with antialiasing when shrinking (B, C, H, W)."""
    if x.shape[-2:] == (height, width):
        return x
    shrink = height < x.shape[-2] or width < x.shape[-1]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)


def scale_to_side(height: int, width: int, side: int) -> tuple[int, int]:
    """(h, w) scaled so the longer side equals ``side``, keeping the aspect ratio."""
    s = side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))
