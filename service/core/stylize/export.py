"""Export a trained transform network to ONNX, check it against PyTorch and register it.

The graph wraps the net in :class:`PaddedTransform`: input ``input`` float32 (N, 3, H, W) RGB 0..255, output
``output`` of the same shape, clamped in the graph; N, H and W are dynamic and any H, W >= 16 works (the
graph reflect-pads to the net's stride and crops back). Export uses the public ``torch.onnx.export`` with
the TorchScript exporter (``dynamo=False``): with ``dynamic_axes`` it gives a compact graph whose padding
is computed from the input shape, which the parity check at odd sizes exercises.

The fp16 variant (for GPU providers only) is the fp32 graph converted with ONNX Runtime's float16 tool,
keeping float32 inputs and outputs; its parity is checked where a provider can run it and the card says
where it was not.

A multi-style net (``mobile2_multi``, ``nets/multi.py``) goes through the same steps with a second input
``style`` (N, S); ``export_multi`` holds what differs: its graph inputs, the parity's style vectors and the
card's per-style provenance, and the manifest entry lists its styles.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.core.errors import InvalidArgument, ModelLoadError
from service.core.stylize.manifest import ManifestEntry, ModelCard, add_to_manifest, sha256_file, write_card
from service.core.stylize.nets import PaddedTransform, TransformNet
from service.core.stylize.nets.multi import MULTI_ARCH, MultiStyleNet
from service.core.stylize.train import LOSS_KEYS, load_checkpoint, net_from_checkpoint

PARITY_SIZES: tuple[tuple[int, int], ...] = ((33, 47), (257, 383), (1024, 768))  # (H, W)
PARITY_LIMIT = 1.0  # max abs difference on the 0..255 scale
FAST_ARCHES = ("mobile", "mobile2", "mobile2w")  # served as "<style>"; the others as "<style>-<arch>"
# A net rebuilt from another takes over its model name, as mobile2 took over mobile's.
SERVED_AS = {"johnson2": "johnson"}
PUBLIC_DOMAIN = "public domain (artist died before 1955, work made before 1929)"

# Paintings in the training set, by file stem: (title, artist, year). From the data set's SOURCES.md.
PAINTINGS: dict[str, tuple[str, str, str]] = {
    "van_gogh_starry_night": ("The Starry Night", "Vincent van Gogh", "1889"),
    "munch_the_scream": ("The Scream", "Edvard Munch", "1893"),
    "turner_the_shipwreck": ("The Shipwreck of the Minotaur", "J. M. W. Turner", "c. 1805-1810"),
    "matisse_woman_with_a_hat": ("Woman with a Hat", "Henri Matisse", "1905"),
    "picabia_udnie": ("Udnie (Young American Girl, The Dance)", "Francis Picabia", "1913"),
    "kandinsky_composition_vii": ("Composition VII", "Wassily Kandinsky", "1913"),
    "hokusai_great_wave": ("The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831"),
    "klimt_the_kiss": ("The Kiss (square crop)", "Gustav Klimt", "1907-08"),
    "monet_water_lilies_1919": ("Water Lilies", "Claude Monet", "1919"),
    "monet_san_giorgio_maggiore_at_dusk": ("San Giorgio Maggiore at Dusk", "Claude Monet", "1908-12"),
    "seurat_sunday_on_la_grande_jatte": ("A Sunday on La Grande Jatte", "Georges Seurat", "1884-86"),
    "gauguin_three_tahitian_women": ("Three Tahitian Women", "Paul Gauguin", "1896"),
    "picabia_edtaonisl": ("Edtaonisl (Ecclesiastic)", "Francis Picabia", "1913"),
    "van_gogh_wheat_field_with_cypresses": ("Wheat Field with Cypresses", "Vincent van Gogh", "1889"),
    "van_gogh_the_night_cafe": ("The Night Café", "Vincent van Gogh", "1888"),
    "sakai_hoitsu_cherry_tree_screen": (
        "Cherry tree on gold folding screen",
        "Sakai Hōitsu",
        "early 19th c.",
    ),
}


@dataclass
class ExportOptions:
    name: str  # style name; the model is "<name>" for mobile/mobile2, "<name>-johnson" for johnson
    version: str = "1"
    opset: int = 17
    fp16: bool = False
    style_image: Path | None = None  # picks title/artist/year from PAINTINGS by file stem
    title: str | None = None
    artist: str | None = None
    year: str | None = None
    licence: str | None = None
    parity_sizes: tuple[tuple[int, int], ...] = PARITY_SIZES
    note: str | None = None  # free text for the card, e.g. the machine and wall time of the training run


def export_onnx(net: TransformNet, path: str | Path, opset: int = 17) -> Path:
    """Write ``net`` (wrapped in ``PaddedTransform``) as an ONNX graph with dynamic N, H, W."""
    if opset < 17:
        raise InvalidArgument(f"Opset {opset} is too old: instance norm and reflect padding need >= 17.")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = net.float().eval().cpu()
    model: torch.nn.Module = PaddedTransform(net)
    example: tuple[torch.Tensor, ...] = (torch.rand(1, 3, 64, 64) * 255.0,)
    dims = {0: "batch", 2: "height", 3: "width"}
    names, axes = ["input"], {"input": dims, "output": dims}
    multi = isinstance(net, MultiStyleNet)
    if isinstance(net, MultiStyleNet):
        from service.core.stylize.export_multi import graph_spec

        model, example, names, axes = graph_spec(net)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter announces its deprecation and notes that instance norm is exported in
        # eval mode; both are expected here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example,
            str(p),
            input_names=names,
            output_names=["output"],
            opset_version=opset,
            dynamic_axes=axes,
            dynamo=False,
            # A multi net's weights are read back from the graph by name to add a style, so no two equal
            # tables (FiLM rows still at 1/0) may be merged into one initializer; export_multi drops
            # them from the graph inputs again.
            keep_initializers_as_inputs=multi,
        )
    if multi:
        from service.core.stylize.export_multi import initializers_not_inputs

        initializers_not_inputs(p)
    return p


def _session(path: Path, providers: list[str]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=providers)


def cuda_available() -> bool:
    """True when the CUDA driver library loads; onnxruntime-gpu lists its CUDA provider even without one."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def parity_check(
    net: TransformNet,
    onnx_path: str | Path,
    sizes: tuple[tuple[int, int], ...] = PARITY_SIZES,
    providers: list[str] | None = None,
) -> dict[str, float]:
    """Max |PyTorch - ONNX Runtime| (0..255 scale) per "HxW" size, on a seeded smooth random image."""
    return _parity(net, _session(Path(onnx_path), providers or ["CPUExecutionProvider"]), sizes)


def _parity(net: TransformNet, session: Any, sizes: tuple[tuple[int, int], ...]) -> dict[str, float]:
    if isinstance(net, MultiStyleNet):
        from service.core.stylize.export_multi import multi_parity

        return multi_parity(net, session, sizes)
    wrapped = PaddedTransform(net.float().eval().cpu())
    gen = torch.Generator().manual_seed(0)
    result: dict[str, float] = {}
    for h, w in sizes:
        # Low-frequency noise upsampled: closer to a photo than white noise, so the net works in its range.
        coarse = torch.rand(1, 3, max(2, h // 8), max(2, w // 8), generator=gen)
        x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * 255.0
        with torch.no_grad():
            ref = wrapped(x).numpy()
        got = session.run(["output"], {"input": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelLoadError(
                f"ONNX output shape {got.shape} differs from PyTorch {ref.shape} at {h}x{w}."
            )
        result[f"{h}x{w}"] = float(np.abs(got.astype(np.float32) - ref).max())
    return result


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """A half-precision copy of an fp32 graph (float32 inputs and outputs kept, casts inside)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))
    return Path(dst)


def fp16_parity(net: TransformNet, path: Path, sizes: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    """Parity of the fp16 graph on the provider that actually ran it (CUDA where a GPU is present).

    The card records that provider; a check on the CPU provider says nothing about CUDA's fp16 kernels, so
    ``cuda_checked`` is stated separately.
    """
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_available() else ["CPUExecutionProvider"]
    )
    try:
        session = _session(path, providers)
        provider = session.get_providers()[0]
        errors = _parity(net, session, sizes)
    except Exception as exc:  # e.g. no fp16 kernels on this provider: record it instead of failing the export
        return {"checked": False, "cuda_checked": False, "reason": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "checked": True,
        "provider": provider,
        "cuda_checked": provider == "CUDAExecutionProvider",
        "max_abs_error": errors,
    }


def painting_info(options: ExportOptions, ckpt: dict[str, Any]) -> dict[str, str]:
    stem = options.style_image.stem if options.style_image else str(ckpt.get("style_file", ""))
    title, artist, year = PAINTINGS.get(stem, ("", "", ""))
    info = {
        "title": options.title or title,
        "artist": options.artist or artist,
        "year": options.year or year,
        "licence": options.licence or (PUBLIC_DOMAIN if stem in PAINTINGS else ""),
    }
    missing = [k for k, v in info.items() if not v]
    if missing:
        raise InvalidArgument(
            f"Unknown painting {stem or '(no --style-image)'}: pass --{' --'.join(missing)} for the model card."
        )
    return info


def export_checkpoint(
    checkpoint: str | Path, models_dir: str | Path, options: ExportOptions
) -> dict[str, Any]:
    """Checkpoint -> ``<models_dir>/<name>.<arch>.onnx`` (+ fp16), model card, manifest entry.

    Raises ``ModelLoadError`` if the parity check fails (max abs error above ``PARITY_LIMIT``); nothing is
    registered in that case. Returns the model card as a dict.
    """
    ckpt = load_checkpoint(checkpoint)
    return export_net(ckpt, models_dir, options)


def export_net(ckpt: dict[str, Any], models_dir: str | Path, options: ExportOptions) -> dict[str, Any]:
    """``export_checkpoint`` of a checkpoint already in memory (``add_style`` re-exports this way)."""
    net = net_from_checkpoint(ckpt)
    arch = net.arch
    styles: list[dict[str, str]] | None = None
    if arch == MULTI_ARCH:
        from service.core.stylize.export_multi import card_summary, style_records

        fallback = {"title": options.title, "artist": options.artist, "year": options.year}
        styles = style_records(ckpt, {**fallback, "licence": options.licence})
        info = card_summary(styles)
    else:
        info = painting_info(options, ckpt)
    folder = Path(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # The fast nets (mobile, and mobile2 that replaces it) serve under the style's own name, so a retrained
    # style takes over its predecessor's name in the manifest; other nets are "<style>-<arch>".
    suffix = SERVED_AS.get(arch, arch)
    model_name = options.name if arch in (*FAST_ARCHES, MULTI_ARCH) else f"{options.name}-{suffix}"
    stem = f"{options.name}.{arch}"
    onnx_path = folder / f"{stem}.onnx"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        # Write and check in a temporary file first, so a failed check never replaces a served model.
        staged = export_onnx(net, Path(tmp) / "model.onnx", options.opset)
        parity = parity_check(net, staged, options.parity_sizes)
        worst = max(parity.values())
        if worst > PARITY_LIMIT:
            raise ModelLoadError(
                f"ONNX export of {model_name} differs from PyTorch by {worst:.3g} (limit {PARITY_LIMIT})."
            )
        staged.replace(onnx_path)
    fp16_file, fp16_sha, fp16_info = None, None, None
    if options.fp16:
        fp16_path = convert_fp16(onnx_path, folder / f"{stem}.fp16.onnx")
        fp16_info = fp16_parity(net, fp16_path, options.parity_sizes)
        fp16_worst = max(fp16_info.get("max_abs_error", {}).values(), default=float("inf"))
        if fp16_info["checked"] and fp16_worst <= PARITY_LIMIT:
            fp16_file, fp16_sha = fp16_path.name, sha256_file(fp16_path)
        else:
            # Behind the same check as the fp32 graph: an fp16 copy that fails it (or that no provider
            # here could run) is not registered; the card says why, and CUDA serves the fp32 graph.
            fp16_path.unlink()
            fp16_info["refused"] = (
                f"max abs error {fp16_worst:.3g} above the limit {PARITY_LIMIT}"
                if fp16_info["checked"]
                else "not checked, so not shipped"
            )
    config = dict(ckpt.get("config", {}))
    history = list(ckpt.get("history", []))
    tail = history[-50:]
    # Only the terms the run logged: checkpoints from before the range term have no "range".
    keys = [k for k in LOSS_KEYS if tail and k in tail[-1]]
    final = {k: round(float(np.mean([r[k] for r in tail])), 5) for k in keys}
    onnx_sha = sha256_file(onnx_path)
    extra: dict[str, Any] = {
        "file": onnx_path.name,
        "size_bytes": onnx_path.stat().st_size,
        "parity_max_abs_error": parity,
        "parity_limit": PARITY_LIMIT,
        "parameters": sum(p.numel() for p in net.parameters()),
        "style_key": options.name,
    }
    if fp16_info is not None:
        extra["fp16_parity"] = fp16_info
    if fp16_file is not None:
        extra.update(fp16_file=fp16_file, fp16_sha256=fp16_sha)
    if options.note:
        extra["training_note"] = options.note
    if styles is not None:
        from service.core.stylize.export_multi import style_losses

        names = [s["name"] for s in styles]
        extra.update(style_key="multi", styles=styles, style_losses=style_losses(ckpt, names))
        if ckpt.get("added_styles"):
            extra["added_styles"] = ckpt["added_styles"]
    style_sha = str(ckpt.get("style_sha256", ""))  # sha256 of the decoded pixels the run trained on
    if styles is None and options.style_image is not None and options.style_image.is_file():
        extra["style_pixels_sha256"] = style_sha
        style_sha = sha256_file(options.style_image)  # the painting's file, as a person would check it
    card = ModelCard(
        name=model_name,
        arch=arch,
        version=options.version,
        style_sha256=style_sha,
        title=info["title"],
        artist=info["artist"],
        year=info["year"],
        licence=info["licence"],
        training={**config, "photos": ckpt.get("photos"), "steps_done": ckpt.get("step")},
        final_losses=final,
        parity_max_abs=parity,
        opset=options.opset,
        onnx_sha256=onnx_sha,
        backbone=str(config.get("backbone", "")),
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
        extra=extra,
    )
    card_path = write_card(folder / f"{stem}.json", card)
    entry = ManifestEntry(
        name=model_name,
        style="multi" if styles is not None else options.name,
        arch=arch,
        version=options.version,
        file=onnx_path.name,
        sha256=onnx_sha,
        card=card_path.name,
        fp16_file=fp16_file,
        fp16_sha256=fp16_sha,
        styles=tuple(s["name"] for s in styles) if styles is not None else None,
    )
    add_to_manifest(folder, entry)
    return card.to_dict()
