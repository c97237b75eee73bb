"""One style model in ONNX Runtime: open, check, probe, warm up and run it (``StyleEngine``'s parts).

A single-style net has one input, ``input`` (N, 3, H, W) in [0, 255]. A multi-style net (arch
``mobile2_multi``, a manifest entry with ``styles``) has a second, ``style`` (N, S): per-image weights over
its S styles, fed row by row, so images of different blends of one net share a run. Conditional instance
normalisation (Dumoulin, Shlens & Kudlur 2017, arXiv:1610.07629) inside the graph turns the weights into
the norm parameters; this module only checks the input's shape and feeds it.

A multi net is listed once per style (``_Model.style_infos``), each ``StyleInfo`` naming the file's model
in ``net``; the card's ``styles`` list gives each style's painting (title, artist, year, licence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from service.core.errors import AtelierError, InvalidArgument, ModelLoadError
from service.core.imageio import resize_to
from service.core.stylize.manifest import ManifestEntry, ModelCard, read_card, sha256_file
from service.core.stylize.probe import sanity_probe

log = logging.getLogger("service.core.stylize.engine")  # one logger for the engine and its parts
WARMUP_SIDES: tuple[int, ...] = (64, 256)
STYLE_INPUT = "style"  # the multi-style graph's second input (the contract's name)


@dataclass(frozen=True)
class StyleInfo:
    """One loaded model, or one style of a multi-style model, for ListStyles / GET /v1/styles /
    ``atelier styles``."""

    name: str
    style: str
    arch: str
    version: str
    title: str
    artist: str
    year: str
    licence: str
    provider: str  # the ONNX Runtime provider actually in use, e.g. "CPUExecutionProvider"
    precision: str  # "fp32" or "fp16"
    card: dict[str, object]  # the full model card
    load_s: float = 0.0  # session creation (file read, checksum, graph optimisation)
    warmup_s: float = 0.0  # the warm-up runs before the model was listed
    net: str = ""  # the model (file) that serves it: its own name for a single-style net


@dataclass
class _Model:
    info: StyleInfo
    session: Any  # onnxruntime.InferenceSession
    input_name: str
    input_dtype: type[np.floating[Any]]
    output_name: str
    styles: tuple[str, ...] = ()  # a multi-style net's styles in style-vector order; () for single nets
    style_dtype: type[np.floating[Any]] = np.float32
    style_infos: dict[str, StyleInfo] = field(default_factory=dict)  # a multi net's listing, by style

    @property
    def multi(self) -> bool:
        return bool(self.styles)


def session_options(intra_threads: int, inter_threads: int) -> Any:
    """``onnxruntime.SessionOptions`` for a transform net (see the engine's docstring for why)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = intra_threads  # 0 = one per physical core (ORT's default)
    so.inter_op_num_threads = inter_threads
    so.log_severity_level = 3  # errors only: provider fallbacks are reported by the engine instead
    # ORT's pool threads spin after each run by default; in a server the event loop, the decode/encode
    # threads and the next batch compete with those spinning threads for the same cores.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def _check_file(folder: Path, rel: str, expected: str) -> Path:
    path = folder / rel
    if not path.is_file():
        raise ModelLoadError(f"model file {rel} is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelLoadError(f"sha256 mismatch for {rel}: manifest {expected[:12]}..., file {actual[:12]}...")
    return path


def _open_session(path: Path, providers: list[str], options: Any) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... classes; all mean "cannot load"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"ONNX Runtime cannot load {path.name}: {first}") from None


def _dtype(type_name: str) -> type[np.floating[Any]]:
    return np.float16 if type_name == "tensor(float16)" else np.float32


def _io_names(session: Any, entry: ManifestEntry) -> tuple[str, type[np.floating[Any]], str, Any]:
    """(image input, its dtype, output, the style input or None), checked against the entry's kind."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    styles = entry.styles or ()
    images = [i for i in inputs if i.name != STYLE_INPUT] if styles else inputs
    if len(images) != 1 or len(outputs) != 1 or len(images[0].shape) != 4:
        raise ModelLoadError(f"{entry.file} does not take one (N, 3, H, W) image input and give one output")
    style_input = None
    if styles:
        found = [i for i in inputs if i.name == STYLE_INPUT]
        if len(inputs) != 2 or not found or len(found[0].shape) != 2:
            raise ModelLoadError(f"{entry.file} lists styles but has no (N, S) input named {STYLE_INPUT!r}")
        style_input = found[0]
        width = style_input.shape[1]
        if isinstance(width, int) and width != len(styles):
            raise ModelLoadError(
                f"{entry.file} takes {width} style weights but the manifest lists {len(styles)} styles"
            )
    elif len(inputs) != 1:
        raise ModelLoadError(
            f"{entry.file} has {len(inputs)} inputs; a manifest entry without styles has one"
        )
    return images[0].name, _dtype(images[0].type), outputs[0].name, style_input


def _style_infos(base: StyleInfo, card: ModelCard, styles: Sequence[str]) -> dict[str, StyleInfo]:
    """One listing entry per style of a multi net, its painting from the card's ``styles`` list."""
    listed = card.extra.get("styles")
    by_name = {s.get("name"): s for s in (listed if isinstance(listed, list) else []) if isinstance(s, dict)}
    out: dict[str, StyleInfo] = {}
    for name in styles:
        meta = by_name.get(name, {})
        out[name] = replace(
            base,
            name=name,
            style=str(meta.get("style_key") or name),
            title=str(meta.get("title", "")),
            artist=str(meta.get("artist", "")),
            year=str(meta.get("year", "")),
            licence=str(meta.get("licence", "")),
        )
    return out


def _load_one(
    folder: Path, entry: ManifestEntry, providers: list[str], options: Any, warmup: bool
) -> tuple[_Model, float]:
    """Open, check and warm up one model; raises ``ModelLoadError`` with the reason."""
    t0 = time.perf_counter()
    path = _check_file(folder, entry.file, entry.sha256)
    card = read_card(folder / entry.card)
    session = _open_session(path, providers, options)
    provider = session.get_providers()[0]
    precision = "fp32"
    if provider == "CUDAExecutionProvider" and entry.fp16_file and entry.fp16_sha256:
        try:
            fp16_path = _check_file(folder, entry.fp16_file, entry.fp16_sha256)
            fp16_session = _open_session(fp16_path, providers, options)
        except ModelLoadError as exc:  # the fp32 graph is good: serve it rather than nothing
            log.warning("model %s: fp16 graph not used (%s); serving fp32", entry.name, exc)
        else:
            session, provider, precision = fp16_session, fp16_session.get_providers()[0], "fp16"
    input_name, dtype, output_name, style_input = _io_names(session, entry)
    styles = tuple(entry.styles or ())
    style_dtype = _dtype(style_input.type) if style_input is not None else np.float32
    # A multi net is probed with one image per style, each row one-hot: every style's parameters run.
    feeds = {STYLE_INPUT: np.eye(len(styles), dtype=style_dtype)} if styles else None
    file = (entry.fp16_file if precision == "fp16" else None) or entry.file
    sanity_probe(session, input_name, dtype, output_name, file, feeds)
    load_s = time.perf_counter() - t0
    info = StyleInfo(
        name=entry.name,
        style=entry.style,
        arch=entry.arch,
        version=entry.version,
        title=card.title,
        artist=card.artist,
        year=card.year,
        licence=card.licence,
        provider=provider,
        precision=precision,
        card=card.to_dict(),
        load_s=load_s,
        net=entry.name,
    )
    model = _Model(info, session, input_name, dtype, output_name, styles, style_dtype)
    warm_s = 0.0
    if warmup:
        t1 = time.perf_counter()
        uniform = [np.full(len(styles), 1.0 / len(styles), np.float32)] if styles else None
        for side in WARMUP_SIDES:
            try:
                _run(model, [np.full((side, side, 3), 127, np.uint8)], uniform)
            except Exception as exc:  # a graph that loads but cannot run must not be listed
                raise ModelLoadError(f"warm-up run at {side} px failed: {exc}") from None
        warm_s = time.perf_counter() - t1
        model.info = replace(info, warmup_s=warm_s)
    if styles:
        model.style_infos = _style_infos(model.info, card, styles)
    return model, warm_s


def _style_feed(model: _Model, weights: Sequence[np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
    if not model.multi:
        if weights is not None and any(w is not None for w in weights):
            raise InvalidArgument(
                f"Style model {model.info.name} is a single-style net; it takes no weights."
            )
        return {}
    if weights is None or len(weights) != n or any(w is None for w in weights):
        raise InvalidArgument(
            f"Style model {model.info.name} is a multi-style net: each image needs its style weights."
        )
    rows = np.stack([np.asarray(w, np.float32).reshape(-1) for w in weights])
    if rows.shape != (n, len(model.styles)):
        raise InvalidArgument(
            f"Style model {model.info.name} takes {len(model.styles)} style weights per image, got "
            f"{rows.shape[1]}."
        )
    return {STYLE_INPUT: rows.astype(model.style_dtype)}


def _run(
    model: _Model, batch: list[np.ndarray], weights: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """One ONNX Runtime run on same-size (H, W, 3) uint8 images -> raw network outputs as uint8.
    ``weights``: a multi net's (S,) style weights, one per image (None for a single-style net)."""
    x = np.stack(batch).transpose(0, 3, 1, 2).astype(model.input_dtype)  # (N, 3, H, W), 0..255
    feeds = {model.input_name: x, **_style_feed(model, weights, len(batch))}
    try:
        y = model.session.run([model.output_name], feeds)[0]
    except Exception as exc:  # ORT's own exception classes (e.g. out of memory): a failure on our side
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AtelierError(
            f"Style model {model.info.name} failed on a batch of {x.shape[0]} at {x.shape[3]}x{x.shape[2]}: {first}"
        ) from None
    out = np.clip(np.rint(np.asarray(y, dtype=np.float32)), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    h, w = batch[0].shape[:2]
    # The contract says same size out; a net whose strides round odd sizes is resized back, not refused.
    return [np.ascontiguousarray(o) if o.shape[:2] == (h, w) else resize_to(o, w, h) for o in out]
