"""Export a trained WCT decoder and the Lite0 encoder up to its tap to ONNX, parity-gated, and register
both in ``models/manifest.json`` (kinds ``decoder`` and ``encoder``) with model cards.

Graphs (dynamic N, H, W; TorchScript exporter, ``dynamo=False``, as ``service.core.stylize.export``):

* encoder ``lite0.<tap>.encoder.onnx``: input ``input`` float32 (N, 3, H, W) RGB 0..255, output
  ``features`` (N, C, ceil(H / 16) * 16 / stride, ...) (``decoder.Encoder``);
* decoder ``wct.<tap>.decoder.onnx``: input ``features`` (N, C, h, w), output ``output`` (N, 3, h * stride,
  w * stride) RGB clamped to 0..255 (``decoder.ServedDecoder``).

Parity (max |PyTorch - ONNX Runtime|) is checked at odd sizes (``PARITY_SIZES``) on smooth seeded inputs;
above ``PARITY_LIMIT`` (0..255 scale for images; relative to the features' largest value for the
encoder) nothing is registered. The checks are the same functions the tests call.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from service.core.arbitrary.decoder import Decoder, Encoder, ServedDecoder
from service.core.backbones import Backbone
from service.core.errors import ModelLoadError
from service.core.stylize.manifest import ManifestEntry, ModelCard, add_to_manifest, sha256_file, write_card

PARITY_SIZES: tuple[tuple[int, int], ...] = ((33, 47), (97, 161))  # (H, W) of the images; odd on purpose
PARITY_LIMIT = 1.0  # decoder: max abs difference on the 0..255 scale
ENCODER_PARITY_LIMIT = 1e-3  # encoder: max abs difference over the largest feature value
OPSET = 17


def _export(module: nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module.float().eval().cpu(),
            (example,),
            str(path),
            input_names=[names[0]],
            output_names=[names[1]],
            opset_version=OPSET,
            dynamic_axes={names[0]: dims, names[1]: dims},
            dynamo=False,
        )
    return path


def export_decoder_onnx(decoder: Decoder, path: str | Path) -> Path:
    example = torch.rand(1, decoder.channels, 4, 4)
    return _export(ServedDecoder(decoder), example, Path(path), ("features", "output"))


def export_encoder_onnx(backbone: Backbone, tap: str, path: str | Path) -> Path:
    # The example is a multiple of 16 and 32 px wide: its SAME paddings are the ones every padded input gets.
    example = torch.rand(1, 3, 64, 96) * 255.0
    return _export(Encoder(backbone, tap).for_export(), example, Path(path), ("input", "features"))


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _smooth(shape: tuple[int, ...], gen: torch.Generator, scale: float) -> torch.Tensor:
    n, c, h, w = shape
    coarse = torch.rand(n, c, max(2, h // 8), max(2, w // 8), generator=gen)
    return nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * scale


def decoder_parity(
    decoder: Decoder, onnx_path: str | Path, sizes: tuple[tuple[int, int], ...] = PARITY_SIZES
) -> dict[str, float]:
    """Max |PyTorch - ONNX| (0..255) per "hxw" *feature* size: the image sizes' features, made odd."""
    session, served = _session(Path(onnx_path)), ServedDecoder(decoder.float().eval().cpu())
    gen = torch.Generator().manual_seed(0)
    result: dict[str, float] = {}
    for h, w in sizes:
        fh, fw = max(3, h // decoder.stride) | 1, max(3, w // decoder.stride) | 1  # odd feature sizes
        x = _smooth((1, decoder.channels, fh, fw), gen, 3.0)  # ReLU6 features live in 0..6
        with torch.no_grad():
            ref = served(x).numpy()
        got = session.run(["output"], {"features": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelLoadError(f"Decoder ONNX output {got.shape} differs from PyTorch {ref.shape}.")
        result[f"{fh}x{fw}"] = float(np.abs(got - ref).max())
    return result


def encoder_parity(
    backbone: Backbone, tap: str, onnx_path: str | Path, sizes: tuple[tuple[int, int], ...] = PARITY_SIZES
) -> dict[str, float]:
    """Max |PyTorch - ONNX| over the largest |feature|, per "HxW" image size (odd: the graph pads)."""
    # The reference is the backbone as trained (SAME padding from each input's size), on the CPU.
    session, encoder = _session(Path(onnx_path)), Encoder(copy.deepcopy(backbone).cpu().eval(), tap)
    gen = torch.Generator().manual_seed(0)
    result: dict[str, float] = {}
    for h, w in sizes:
        x = _smooth((1, 3, h, w), gen, 255.0)
        with torch.no_grad():
            ref = encoder(x).numpy()
        got = session.run(["features"], {"input": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelLoadError(f"Encoder ONNX output {got.shape} differs from PyTorch {ref.shape}.")
        result[f"{h}x{w}"] = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-6))
    return result


def _register(
    folder: Path, name: str, kind: str, path: Path, card: ModelCard, version: str
) -> dict[str, Any]:
    card_path = write_card(folder / f"{path.name.removesuffix('.onnx')}.json", card)
    entry = ManifestEntry(
        name=name,
        style="custom",
        arch=card.arch,
        version=version,
        file=path.name,
        sha256=card.onnx_sha256,
        card=card_path.name,
        kind=kind,
    )
    add_to_manifest(folder, entry)
    return card.to_dict()


def install_decoder(
    decoder: Decoder,
    backbone: Backbone,
    tap: str,
    models_dir: str | Path,
    version: str = "1",
    training: dict[str, Any] | None = None,
    final_losses: dict[str, float] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Export, check and register the decoder for ``tap`` and its encoder; returns the decoder's card.

    Raises ``ModelLoadError`` when a parity check fails; a graph that failed is never moved into
    ``models_dir`` (staged in a temporary folder first), so a served model is never replaced by a bad one.
    """
    folder = Path(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    enc_name, dec_name = f"lite0.{tap}", f"wct.{tap}"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        enc_staged = export_encoder_onnx(backbone, tap, Path(tmp) / "encoder.onnx")
        enc_parity = encoder_parity(backbone, tap, enc_staged)
        dec_staged = export_decoder_onnx(decoder, Path(tmp) / "decoder.onnx")
        dec_parity = decoder_parity(decoder, dec_staged)
        if max(enc_parity.values()) > ENCODER_PARITY_LIMIT:
            raise ModelLoadError(
                f"Encoder {enc_name} ONNX differs from PyTorch by {max(enc_parity.values()):.3g} of its range "
                f"(limit {ENCODER_PARITY_LIMIT})."
            )
        if max(dec_parity.values()) > PARITY_LIMIT:
            raise ModelLoadError(
                f"Decoder {dec_name} ONNX differs from PyTorch by {max(dec_parity.values()):.3g} "
                f"(limit {PARITY_LIMIT})."
            )
        enc_path = enc_staged.replace(folder / f"{enc_name}.encoder.onnx")
        dec_path = dec_staged.replace(folder / f"{dec_name}.decoder.onnx")
    common: dict[str, Any] = {"tap": tap, "stride": decoder.stride, "channels": decoder.channels}
    enc_card = ModelCard(
        name=enc_name,
        arch="lite0_encoder",
        version=version,
        licence="Apache-2.0 (EfficientNet-Lite0 ImageNet weights)",
        parity_max_abs=enc_parity,
        opset=OPSET,
        onnx_sha256=sha256_file(enc_path),
        backbone=backbone.name,
        created=created,
        extra={**common, "file": enc_path.name, "parity_limit": ENCODER_PARITY_LIMIT},
    )
    _register(folder, enc_name, "encoder", enc_path, enc_card, version)
    dec_card = ModelCard(
        name=dec_name,
        arch="wct_decoder",
        version=version,
        licence="trained here on photos only (no paintings)",
        training=dict(training or {}),
        final_losses=dict(final_losses or {}),
        parity_max_abs=dec_parity,
        opset=OPSET,
        onnx_sha256=sha256_file(dec_path),
        backbone=backbone.name,
        created=created,
        extra={
            **common,
            "encoder": enc_name,
            "file": dec_path.name,
            "width_scale": decoder.width_scale,
            "parity_limit": PARITY_LIMIT,
            "parameters": sum(p.numel() for p in decoder.parameters()),
            "method": "WCT, Li et al. 2017, arXiv:1705.08086",
            **({"training_note": note} if note else {}),
        },
    )
    return _register(folder, dec_name, "decoder", dec_path, dec_card, version)
