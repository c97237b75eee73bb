"""A tiny multi-style net for tests: a real ONNX file exported by torch that obeys the multi-style contract.

Contract (issue #19): inputs ``input`` float32 (N, 3, H, W) in [0, 255] and ``style`` float32 (N, S), the
per-image style weights; output ``output`` (N, 3, H, W) in [0, 255]; N, H, W dynamic. The conditioning is
conditional instance norm (Dumoulin, Shlens & Kudlur 2017, arXiv:1610.07629): ``gamma = style @ Gamma``,
``beta = style @ Beta``, so a one-hot row is that style and a blend interpolates the norm parameters.

The net (conv, conditional instance norm, ReLU, conv, sigmoid, mixed with the input) is seeded, so its
styles differ visibly and the same seed gives the same file. Exported with the TorchScript exporter
(``dynamo=False``) in about a second; no test depends on the trained multi-style net.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from service.core.stylize.manifest import ManifestEntry, ModelCard, add_to_manifest, sha256_file, write_card

MULTI_STYLES = ("ember", "moss", "tide")
HIDDEN = 8


class ToyMulti(nn.Module):
    def __init__(self, styles: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, HIDDEN, 3, padding=1)
        self.conv2 = nn.Conv2d(HIDDEN, 3, 3, padding=1)
        with torch.no_grad():
            for p in (*self.conv1.parameters(), *self.conv2.parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.4)
        # Each style's scale and shift differ a lot, so the styles' outputs differ a lot.
        self.gamma = nn.Parameter(torch.rand(styles, HIDDEN, generator=g) * 2.0 + 0.2)
        self.beta = nn.Parameter(torch.randn(styles, HIDDEN, generator=g) * 1.0)

    def forward(self, input: Tensor, style: Tensor) -> Tensor:
        x = input / 255.0
        h = self.conv1(x)
        mean = h.mean(dim=(2, 3), keepdim=True)
        var = ((h - mean) ** 2).mean(dim=(2, 3), keepdim=True)
        h = (h - mean) / torch.sqrt(var + 1e-5)
        gamma = (style @ self.gamma)[:, :, None, None]
        beta = (style @ self.beta)[:, :, None, None]
        h = torch.relu(h * gamma + beta)
        y = 0.4 * x + 0.6 * torch.sigmoid(self.conv2(h))
        return torch.clamp(y * 255.0, 0.0, 255.0)


def export_toy(path: Path, styles: int, seed: int) -> None:
    net = ToyMulti(styles, seed).eval()
    x = torch.rand(1, 3, 32, 40) * 255.0
    w = torch.eye(styles)[:1]
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation note, on purpose (dynamo=False)
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(net, x, w, path)


def _export(net: nn.Module, x: Tensor, w: Tensor, path: Path) -> None:
    torch.onnx.export(
        net,
        (x, w),
        str(path),
        input_names=["input", "style"],
        output_names=["output"],
        dynamic_axes={
            "input": {0: "N", 2: "H", 3: "W"},
            "style": {0: "N"},
            "output": {0: "N", 2: "H", 3: "W"},
        },
        opset_version=17,
        dynamo=False,
    )


def write_tiny_multi(
    models_dir: Path, name: str = "multi", styles: tuple[str, ...] = MULTI_STYLES, seed: int = 0
) -> Path:
    """Export the toy net into ``models_dir`` with its card and manifest entry; return ``models_dir``."""
    folder = Path(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    file, card_file = f"{name}.mobile2_multi.onnx", f"{name}.mobile2_multi.json"
    export_toy(folder / file, len(styles), seed)
    digest = sha256_file(folder / file)
    listed = [
        {
            "name": s,
            "style_key": s,
            "title": f"Toy painting {s}",
            "artist": "Atelier tests",
            "year": "2026",
            "licence": "CC0",
            "style_sha256": "0" * 64,
        }
        for s in styles
    ]
    card = ModelCard(
        name=name,
        arch="mobile2_multi",
        version="1",
        title="Toy multi-style net",
        artist="Atelier tests",
        licence="CC0",
        opset=17,
        onnx_sha256=digest,
        extra={"styles": listed},
    )
    write_card(folder / card_file, card)
    entry = ManifestEntry(
        name=name,
        style="multi",
        arch="mobile2_multi",
        version="1",
        file=file,
        sha256=digest,
        card=card_file,
        styles=tuple(styles),
    )
    add_to_manifest(folder, entry)
    return folder
