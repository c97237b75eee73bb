"""``bench_render.py --diagnose``: the blur-sensitivity table (why a coarse Gatys start helps so little)."""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _bench_util import images

from service.core.backbones import get_backbone
from service.core.imageio import resize_max_side
from service.core.render.gatys import GatysOptions, gatys, gatys_loss, preset_for
from service.core.render.losses import gram_matrix, normalized_content_loss, normalized_style_loss
from service.core.tensors import image_to_tensor, resize_tensor, scale_to_side, tensor_to_image


def reflect_tile(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, h, w) mirrored and repeated until it covers (height, width), then cropped to it."""
    while x.shape[2] < height:
        x = torch.cat([x, x.flip(2)], 2)
    while x.shape[3] < width:
        x = torch.cat([x, x.flip(3)], 3)
    return x[:, :, :height, :width]


def blur_diagnosis(args: argparse.Namespace) -> str:
    """Why a coarse start helps so little: the 512 px style loss of images that only lack fine detail.

    Each row is evaluated with the 512 px targets of the time-to-quality runs, one style tap at a time
    (weighted as in the objective). A painting resampled down to 256 px and back up carries no new
    content at all, only less detail, so its loss measures how much the taps penalise blur alone.
    """
    device = args.device
    backbone = get_backbone("efficientnet_lite0", device)
    content, style = images(args)
    size = args.quality_size
    taps = preset_for(backbone).style_taps

    def there_and_back(img: np.ndarray, side: int) -> np.ndarray:
        x = image_to_tensor(img, device)
        h, w = scale_to_side(img.shape[0], img.shape[1], side)
        return tensor_to_image(resize_tensor(resize_tensor(x, h, w), x.shape[2], x.shape[3]))

    def bilinear(img: np.ndarray) -> np.ndarray:  # the resampling the targets are built with
        h, w = scale_to_side(img.shape[0], img.shape[1], size)
        return tensor_to_image(resize_tensor(image_to_tensor(img, device), h, w))

    photo = bilinear(content)
    painting = bilinear(style)
    rows = [
        ("the photo (single-scale start)", photo),
        ("the painting itself (the target)", painting),
        ("the painting, resampled with Lanczos instead", resize_max_side(style, size)),
        (f"the painting, {size // 2} px and back", there_and_back(painting, size // 2)),
        (f"the photo, {size // 2} px and back", there_and_back(photo, size // 2)),
    ]
    # The start of a 256 -> 512 schedule's second stage, and two ways of putting fine detail back.
    coarse = gatys(backbone, content, [style], GatysOptions(size=size // 2, steps=args.diagnose_steps))
    up = resize_tensor(image_to_tensor(coarse, device), photo.shape[0], photo.shape[1])
    photo_t = image_to_tensor(photo, device)
    painting_t = image_to_tensor(painting, device)
    h2, w2 = scale_to_side(painting.shape[0], painting.shape[1], size // 2)
    painting_detail = reflect_tile(
        painting_t - resize_tensor(resize_tensor(painting_t, h2, w2), *painting_t.shape[2:]),
        photo.shape[0],
        photo.shape[1],
    )
    h2, w2 = scale_to_side(photo.shape[0], photo.shape[1], size // 2)
    photo_detail = photo_t - resize_tensor(resize_tensor(photo_t, h2, w2), photo.shape[0], photo.shape[1])
    rows += [
        (
            f"{size // 2} px result ({args.diagnose_steps} L-BFGS its), upsampled (the schedule's start)",
            tensor_to_image(up),
        ),
        ("the same + the photo's fine detail", tensor_to_image((up + photo_detail).clamp(0, 1))),
        (
            "the same + the painting's fine detail (tiled)",
            tensor_to_image((up + photo_detail + painting_detail).clamp(0, 1)),
        ),
    ]
    lines = [
        f"{size} px style loss (weighted) of images that differ only in fine detail, per style tap",
        "",
        "| image | " + " | ".join(f"`{t}`" for t in taps) + " | style total |",
        "|---" * (len(taps) + 2) + "|",
    ]
    for name, img in rows:
        per_tap = [
            gatys_loss(backbone, img, content, [style], GatysOptions(size=size, style_taps=(t,)))["style"]
            for t in taps
        ]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in per_tap) + f" | {sum(per_tap):.1f} |")
    # Is there a tap that does not mind? The same ratio for taps across the whole network.
    candidates = ["stem", "block1.expand", "block1", "block3.expand", "block3", "block5.expand", "block5",
                  "block8.expand", "block8.dw", "block8", "block10", "block12", "head"]  # fmt: skip
    lines += [
        "",
        "Per tap, across the network: style distance (normalised Gram) to the 512 px painting of the painting "
        f"downsampled to {size // 2} px and back, as a fraction of the photo's distance (1.0: blur alone "
        "costs as much as having the photo's content instead of the painting's)",
        "",
        "| tap | photo | painting, down and back | fraction |",
        "|---|---:|---:|---:|",
    ]
    with torch.no_grad():
        target = backbone.features(image_to_tensor(painting, device), candidates)
        back = backbone.features(image_to_tensor(there_and_back(painting, size // 2), device), candidates)
        ph = backbone.features(image_to_tensor(photo, device), candidates)
        for t in candidates:
            g = gram_matrix(target[t])
            d_photo = float(normalized_style_loss(gram_matrix(ph[t]), g))
            d_back = float(normalized_style_loss(gram_matrix(back[t]), g))
            lines.append(f"| `{t}` | {d_photo:.3g} | {d_back:.3g} | {d_back / d_photo:.2f} |")
    # The content term minds blur as much: a coarse result cannot hold the photo's 512 px features.
    content_taps = ["stem", "block3", "block5", "block6", "block7.dw", "block7", "block8", "block10", "head"]
    lines += [
        "",
        f"Per tap: content distance (normalised, as the content term computes it) of the photo downsampled "
        f"to {size // 2} px and back, to the {size} px photo",
        "",
        "| " + " | ".join(f"`{t}`" for t in content_taps) + " |",
        "|---:" * len(content_taps) + "|",
    ]
    with torch.no_grad():
        sharp = backbone.features(photo_t, content_taps)
        blurred = backbone.features(image_to_tensor(there_and_back(photo, size // 2), device), content_taps)
        lines.append(
            "| "
            + " | ".join(f"{float(normalized_content_loss(blurred[t], sharp[t])):.2f}" for t in content_taps)
            + " |"
        )
    return "\n".join(lines)
