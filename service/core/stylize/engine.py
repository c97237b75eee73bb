"""The fast-stylize engine: every model of a ``models/`` folder in ONNX Runtime, checked, warmed up, served.

Loading (``StyleEngine.load``) reads the manifest, checks each file's sha256, opens one ``InferenceSession``
per model, probes it (``probe.py``: finite output of the input's shape) and runs it once at 64 and 256 px
before the model is listed; a corrupt, mismatched, unloadable or failing model is recorded in
``load_errors`` and skipped while the others load. Session options are set on purpose:
all graph optimisations, the caller's intra/inter-op thread counts, sequential execution (the transform nets
are a chain, parallel execution only adds scheduling). Providers are tried in the caller's order (CUDA, then
CPU); the provider the session actually uses is reported in ``StyleInfo.provider`` and a warning is logged
when it is not the first preference, so a fallback to CPU is never silent. The fp16 graph of a model is
used only when the provider in use is CUDA. Which providers can run here: ``providers.py`` (re-exported).

The networks are Johnson, Alahi and Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution" (arXiv:1603.08155) and lighter relatives; see ``service.core.stylize.nets``.
Thread safety: ``InferenceSession.run`` may be called from several threads at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from service.core.errors import AtelierError, InvalidArgument, ModelLoadError, UnknownModel
from service.core.imageio import resize_max_side, resize_to
from service.core.stylize.color import blend, preserve_color
from service.core.stylize.manifest import ManifestEntry, read_card, read_manifest, sha256_file
from service.core.stylize.probe import sanity_probe
from service.core.stylize.providers import available_providers as available_providers
from service.core.stylize.providers import provider_choice as provider_choice
from service.core.stylize.tiling import run_tiled

log = logging.getLogger(__name__)

# Defaults of StyleEngine.load; service.settings.Settings takes its defaults from these, so each is written once.
DEFAULT_PROVIDERS: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
DEFAULT_INTRA_THREADS = 0  # ONNX Runtime intra-op threads; 0 = one per physical core
DEFAULT_INTER_THREADS = 1
DEFAULT_TILE_THRESHOLD = 1536  # images with a side above this are tiled
DEFAULT_TILE_SIZE = 1024
DEFAULT_TILE_OVERLAP = 64
MIN_SIDE = 16  # the graph contract: any H, W >= 16
WARMUP_SIDES: tuple[int, ...] = (64, 256)


@dataclass(frozen=True)
class StyleInfo:
    """One loaded model, for ListStyles / GET /v1/styles / ``atelier styles``."""

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


@dataclass(frozen=True)
class StylizeOptions:
    strength: float = 1.0  # 0..1, blend with the content (0 returns the content image)
    preserve_color: bool = False  # luminance-only transfer (Gatys et al. 2016)
    max_side: int | None = None  # downscale input so the longer side is at most this

    def check(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise InvalidArgument(f"strength must be between 0 and 1, got {self.strength}.")
        if self.max_side is not None and self.max_side < MIN_SIDE:
            raise InvalidArgument(f"max_side must be at least {MIN_SIDE}, got {self.max_side}.")


@dataclass
class _Model:
    info: StyleInfo
    session: Any  # onnxruntime.InferenceSession
    input_name: str
    input_dtype: type[np.floating[Any]]
    output_name: str


def session_options(intra_threads: int, inter_threads: int) -> Any:
    """``onnxruntime.SessionOptions`` for a transform net (see the module docstring for why)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = intra_threads  # 0 = one per physical core (ORT's default)
    so.inter_op_num_threads = inter_threads
    so.log_severity_level = 3  # errors only: provider fallbacks are reported by this module instead
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


def _io_names(session: Any, file: str) -> tuple[str, type[np.floating[Any]], str]:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelLoadError(f"{file} does not take one (N, 3, H, W) input and give one output")
    dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
    return inputs[0].name, dtype, outputs[0].name


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
    input_name, dtype, output_name = _io_names(session, entry.file)
    sanity_probe(
        session,
        input_name,
        dtype,
        output_name,
        (entry.fp16_file if precision == "fp16" else None) or entry.file,
    )
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
    )
    model = _Model(info, session, input_name, dtype, output_name)
    warm_s = 0.0
    if warmup:
        t1 = time.perf_counter()
        for side in WARMUP_SIDES:
            try:
                _run(model, [np.full((side, side, 3), 127, np.uint8)])
            except Exception as exc:  # a graph that loads but cannot run must not be listed
                raise ModelLoadError(f"warm-up run at {side} px failed: {exc}") from None
        warm_s = time.perf_counter() - t1
        model.info = replace(info, warmup_s=warm_s)
    return model, warm_s


def _run(model: _Model, batch: list[np.ndarray]) -> list[np.ndarray]:
    """One ONNX Runtime run on same-size (H, W, 3) uint8 images -> raw network outputs as uint8."""
    x = np.stack(batch).transpose(0, 3, 1, 2).astype(model.input_dtype)  # (N, 3, H, W), 0..255
    try:
        y = model.session.run([model.output_name], {model.input_name: x})[0]
    except Exception as exc:  # ORT's own exception classes (e.g. out of memory): a failure on our side
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AtelierError(
            f"Style model {model.info.name} failed on a batch of {x.shape[0]} at {x.shape[3]}x{x.shape[2]}: {first}"
        ) from None
    out = np.clip(np.rint(np.asarray(y, dtype=np.float32)), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    h, w = batch[0].shape[:2]
    # The contract says same size out; a net whose strides round odd sizes is resized back, not refused.
    return [np.ascontiguousarray(o) if o.shape[:2] == (h, w) else resize_to(o, w, h) for o in out]


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise InvalidArgument(f"Expected an (H, W, 3) uint8 RGB image, got {shape}.")
    if min(image.shape[:2]) < MIN_SIDE:
        raise InvalidArgument(
            f"Image is {image.shape[1]}x{image.shape[0]}; both sides must be at least {MIN_SIDE} pixels."
        )


@dataclass
class StyleEngine:
    """Loaded style models; build with ``StyleEngine.load``. Use as a context manager or call ``close``."""

    tile_threshold: int
    tile_size: int
    tile_overlap: int
    load_errors: dict[str, str] = field(default_factory=dict)
    _models: dict[str, _Model] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        models_dir: str | Path,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        intra_threads: int = DEFAULT_INTRA_THREADS,
        inter_threads: int = DEFAULT_INTER_THREADS,
        tile_threshold: int = DEFAULT_TILE_THRESHOLD,
        tile_size: int = DEFAULT_TILE_SIZE,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        warmup: bool = True,
        names: Collection[str] | None = None,
    ) -> StyleEngine:
        """Load every model in ``models_dir/manifest.json`` (or only ``names``); failures go to
        ``load_errors``, never raise. ``names`` not in the manifest raise ``UnknownModel`` listing it."""
        if tile_size < MIN_SIDE or not 0 <= tile_overlap < tile_size // 2 or tile_threshold < tile_size:
            raise InvalidArgument(
                f"Tiling needs tile_size >= {MIN_SIDE}, 0 <= overlap < tile_size / 2 and threshold >= "
                f"tile_size; got size {tile_size}, overlap {tile_overlap}, threshold {tile_threshold}."
            )
        engine = cls(tile_threshold=tile_threshold, tile_size=tile_size, tile_overlap=tile_overlap)
        folder = Path(models_dir)
        try:
            entries = read_manifest(folder, errors=engine.load_errors)
        except ModelLoadError as exc:
            engine.load_errors["manifest.json"] = str(exc)
            log.error("no style models loaded: %s", exc)
            return engine
        entries = [e for e in entries if e.kind == "style"]  # the arbitrary-style parts load elsewhere
        if names is not None:
            listed = {e.name for e in entries}
            for name in names:
                if name not in listed:
                    raise UnknownModel("style", name, listed)
            entries = [e for e in entries if e.name in names]
        chosen = available_providers(providers)
        options = session_options(intra_threads, inter_threads)
        fell_back = False
        for entry in entries:
            try:
                model, _ = _load_one(folder, entry, chosen, options, warmup)
            except ModelLoadError as exc:
                engine.load_errors[entry.name] = str(exc)
                log.error("style model %s skipped: %s", entry.name, exc)
                continue
            engine._models[entry.name] = model
            used = model.info.provider
            if providers and used != providers[0] and not fell_back:
                # Said once per load, not once per model: every further model lands on the same provider.
                fell_back = True
                log.warning(
                    "style model %s runs on %s, not on the preferred %s (so will the models after it)",
                    entry.name,
                    used,
                    providers[0],
                )
            if used in chosen and chosen.index(used) > 0:
                # The preferred provider is compiled in but cannot run here (no GPU, missing CUDA
                # libraries): stop asking for it, so each further model does not fail and retry it.
                chosen = chosen[chosen.index(used) :]
            # DEBUG: the server and the CLI report each model themselves (with metrics and versions).
            log.debug(
                "style model %s ready on %s (%s; load %.2fs, warm-up %.2fs)",
                entry.name,
                model.info.provider,
                model.info.precision,
                model.info.load_s,
                model.info.warmup_s,
            )
        return engine

    # --- queries -----------------------------------------------------------------------------------------
    def styles(self) -> list[StyleInfo]:
        return [self._models[name].info for name in sorted(self._models)]

    def info(self, name: str) -> StyleInfo:
        return self._model(name).info

    def _model(self, name: str) -> _Model:
        model = self._models.get(name)
        if model is None:
            raise UnknownModel("style", name, self._models)
        return model

    # --- the pipeline ------------------------------------------------------------------------------------
    def stylize(
        self,
        name: str,
        image: np.ndarray,
        options: StylizeOptions = StylizeOptions(),
        on_run: Callable[[int, float], None] | None = None,
    ) -> np.ndarray:
        """Stylise an (H, W, 3) uint8 image with model ``name``; tiles images above ``tile_threshold``.

        ``on_run(images, seconds)`` is told of each ONNX Runtime run (none for strength 0), for metrics."""
        model = self._model(name)  # unknown names fail before any work
        content = self.prepare(image, options)
        if options.strength == 0.0:
            return content.copy()  # nothing of the style is kept: skip the network

        def run(images: list[np.ndarray]) -> list[np.ndarray]:
            start = time.perf_counter()
            out = _run(model, images)
            if on_run is not None:
                on_run(len(images), time.perf_counter() - start)
            return out

        if self.needs_tiling(content):
            stylized = run_tiled(content, run, self.tile_size, self.tile_overlap, batch_size=4)
        else:
            stylized = run([content])[0]
        return self.finish(content, stylized, options)

    def batchable(self, content: np.ndarray, options: StylizeOptions) -> bool:
        """Whether ``stylize`` makes exactly one network run over the whole prepared image (no strength-0
        shortcut, no tiles): then ``finish(content, run_batch(name, [content, ...])[i], options)`` gives the
        same pixels, and the run can be shared with other same-size images."""
        return options.strength != 0.0 and not self.needs_tiling(content)

    def prepare(self, image: np.ndarray, options: StylizeOptions) -> np.ndarray:
        """Validate the image and options; downscale to ``options.max_side``. Returns (H, W, 3) uint8."""
        options.check()
        _check_image(image)
        if options.max_side is not None:
            image = resize_max_side(image, options.max_side)
            _check_image(image)  # a very wide image can fall below the minimum on its short side
        return np.ascontiguousarray(image)

    def needs_tiling(self, prepared: np.ndarray) -> bool:
        return max(prepared.shape[:2]) > self.tile_threshold

    def run_batch(self, name: str, batch: list[np.ndarray]) -> list[np.ndarray]:
        """One network run over same-size prepared images; returns the raw stylised uint8 images."""
        model = self._model(name)
        if not batch:
            return []
        for im in batch:
            _check_image(im)
        if len({im.shape for im in batch}) != 1:
            raise InvalidArgument(
                f"Images in one batch must share a size, got {sorted({im.shape for im in batch})}."
            )
        return _run(model, batch)

    def finish(self, content: np.ndarray, stylized: np.ndarray, options: StylizeOptions) -> np.ndarray:
        """Apply ``preserve_color`` and ``strength`` to a network output for its prepared content."""
        out = preserve_color(content, stylized) if options.preserve_color else stylized
        return blend(content, out, options.strength)

    # --- lifetime ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release every session (ONNX Runtime frees its memory when the session object goes)."""
        self._models.clear()

    def __enter__(self) -> StyleEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
