"""Side-by-side picture of an attack: original, magnified perturbation, adversarial, with top-1 labels."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.core.adversarial.common import AttackResult


def attack_sheet(result: AttackResult, eps: float, method: str, tile: int = 256) -> np.ndarray:
    """(H, W, 3) uint8: three tiles of side ``tile`` (nearest-neighbour scaled, so pixels stay crisp)."""
    b, a = result.before[0], result.after[0]
    linf = result.linf
    panels = [
        (result.original, f"original: {b.label} {b.probability:.0%}"),
        (result.magnified(), f"perturbation x{127 // max(1, linf)} (L-inf {linf}/255)"),
        (result.adversarial, f"{method} eps {eps:g}: {a.label} {a.probability:.0%}"),
    ]
    caption, pad = 26, 8
    sheet = Image.new("RGB", (3 * tile + 4 * pad, tile + caption + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for i, (image, text) in enumerate(panels):
        x = pad + i * (tile + pad)
        sheet.paste(Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST), (x, pad))
        draw.text((x + 2, pad + tile + 6), text[:44], fill=(20, 20, 20), font=font)
    return np.asarray(sheet)
