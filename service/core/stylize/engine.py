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

A multi-style net (a manifest entry with ``styles``; loading and running it: ``sessions.py``) serves each
of its styles and any blend of them (``choose``, ``blend.py``): Dumoulin, Shlens & Kudlur (2017),
"A Learned Representation for Artistic Style" (arXiv:1610.07629). ``styles()`` lists each style, its
``net`` naming the model; ``models()`` lists each model once.

The networks are Johnson, Alahi and Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution" (arXiv:1603.08155) and lighter relatives; see ``service.core.stylize.nets``.
Thread safety: ``InferenceSession.run`` may be called from several threads at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.core.errors import InvalidArgument, ModelLoadError, UnknownModel
from service.core.imageio import resize_max_side
from service.core.stylize.blend import Blend
from service.core.stylize.color import blend, preserve_color
from service.core.stylize.manifest import read_manifest
from service.core.stylize.providers import available_providers as available_providers
from service.core.stylize.providers import provider_choice as provider_choice
from service.core.stylize.sessions import WARMUP_SIDES as WARMUP_SIDES
from service.core.stylize.sessions import StyleInfo as StyleInfo
from service.core.stylize.sessions import _check_file as _check_file
from service.core.stylize.sessions import _load_one, _Model, _run
from service.core.stylize.sessions import _open_session as _open_session
from service.core.stylize.sessions import session_options as session_options
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
BLEND_LABEL = "blend"  # the style label of metrics for a call that mixes styles (bounded cardinality)


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


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise InvalidArgument(f"Expected an (H, W, 3) uint8 RGB image, got {shape}.")
    if min(image.shape[:2]) < MIN_SIDE:
        raise InvalidArgument(
            f"Image is {image.shape[1]}x{image.shape[0]}; both sides must be at least {MIN_SIDE} pixels."
        )


@dataclass(frozen=True, eq=False)
class StyleChoice:
    """What one call paints with, resolved against the loaded models (``StyleEngine.choose``)."""

    net: str  # the model (file) that runs
    weights: np.ndarray | None  # a multi-style net's (S,) style weights, summing to 1; None: single net
    style: str  # what is painted: the style's name, or the blend's normalised label "a:0.7,b:0.3"
    metric_style: str  # the metrics' style label: the style's name, BLEND_LABEL for a true blend
    info: StyleInfo  # the style's listing entry (a blend: its net's)


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
        """Load every model in ``models_dir/manifest.json`` (or only those ``names`` name: a model, or a
        style of a multi-style net); failures go to ``load_errors``, never raise. ``names`` not in the
        manifest raise ``UnknownModel`` listing it."""
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
            listed = {e.name for e in entries} | {s for e in entries for s in e.styles or ()}
            for name in names:
                if name not in listed:
                    raise UnknownModel("style", name, listed)
            entries = [e for e in entries if e.name in names or set(e.styles or ()) & set(names)]
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
        """Every style served, by name: a single-style net once, a multi-style net once per style (its
        ``net`` names the file's model); a single net sorts before a multi net's style of its name."""
        out: list[StyleInfo] = []
        for name in sorted(self._models):
            model = self._models[name]
            out.extend(model.style_infos.values() if model.multi else [model.info])
        return sorted(out, key=lambda i: (i.name, i.net != i.name, i.net))

    def models(self) -> list[StyleInfo]:
        """One entry per loaded model file (the metrics' ``model`` label, reloads), sorted by name."""
        return [self._models[name].info for name in sorted(self._models)]

    def net_styles(self, name: str) -> tuple[str, ...]:
        """A multi-style net's styles in style-vector order; () for a single-style net or an unknown name."""
        model = self._models.get(name)
        return model.styles if model is not None else ()

    def info(self, name: str) -> StyleInfo:
        """A model by name, else the style of that name of a multi-style net (``UnknownModel`` listing the
        served styles)."""
        model = self._models.get(name)
        return model.info if model is not None else self.choose(style=name).info

    def _model(self, name: str) -> _Model:
        model = self._models.get(name)
        if model is None:
            raise UnknownModel("style", name, {i.name for i in self.styles()})
        return model

    def choose(
        self, style: str | None = None, blend: Blend | None = None, net: str | None = None
    ) -> StyleChoice:
        """Resolve a call's ``style`` or ``blend`` (and optional ``net``, a model name) to what runs.

        A style name is a single-style net of that name first, else the first multi-style net (by name)
        with a style of that name, one-hot. A blend names styles of one multi-style net: ``net``, or the
        first that has every named style; a one-entry blend of a single net's style is that net."""
        if (style is None) == (blend is None):
            raise InvalidArgument("Give a style or a blend (exactly one).")
        if net is not None and net not in self._models:
            raise UnknownModel("model", net, self._models)
        multis = [m for _, m in sorted(self._models.items()) if m.multi]
        if style is not None:
            single = self._models.get(style)
            if single is not None and not single.multi and net in (None, style):
                return StyleChoice(style, None, style, style, single.info)
            found = [m for m in multis if style in m.style_infos and net in (None, m.info.name)]
            if not found:
                where = self._models[net].style_infos if net is not None and self._models[net].multi else None
                raise UnknownModel("style", style, where or {i.name for i in self.styles()})
            return self._one_hot(found[0], style)
        assert blend is not None
        if net is not None:
            model = self._models[net]
            if not model.multi:
                if blend.names == (net,):
                    return StyleChoice(net, None, net, net, model.info)
                raise InvalidArgument(f"Model {net!r} is a single-style net; blends need a multi-style net.")
            return self._blended(model, blend)
        found = [m for m in multis if set(blend.names) <= set(m.styles)]
        if found:
            return self._blended(found[0], blend)
        single = self._models.get(blend.names[0])
        if len(blend.names) == 1 and single is not None:
            return StyleChoice(single.info.name, None, single.info.name, single.info.name, single.info)
        if not multis:
            raise InvalidArgument(
                "No multi-style net is loaded, so styles cannot be blended here; send one style instead."
            )
        blend.check_known({s for m in multis for s in m.styles})  # unknown names, listing the known
        owners = "; ".join(f"{m.info.name} has {', '.join(m.styles)}" for m in multis)
        raise InvalidArgument(f"No one net has every style of the blend ({owners}).")

    def _one_hot(self, model: _Model, style: str) -> StyleChoice:
        weights = np.zeros(len(model.styles), np.float32)
        weights[model.styles.index(style)] = 1.0
        return StyleChoice(model.info.name, weights, style, style, model.style_infos[style])

    def _blended(self, model: _Model, blend: Blend) -> StyleChoice:
        weights = blend.vector(model.styles, f" of {model.info.name}")
        pure = blend.pure
        if pure is not None:
            return self._one_hot(model, pure)
        return StyleChoice(model.info.name, weights, blend.label(), BLEND_LABEL, model.info)

    def _target(self, name: str, weights: np.ndarray | None) -> tuple[_Model, np.ndarray | None]:
        """(model, weights) for ``stylize``: a model by name (a multi one with ``weights``), or a style."""
        model = self._models.get(name)
        if model is not None and (weights is not None or not model.multi):
            return model, weights
        if model is not None:
            raise InvalidArgument(f"{name!r} is a multi-style net: name one of its styles, or give weights.")
        if weights is not None:
            raise UnknownModel("model", name, self._models)
        choice = self.choose(style=name)
        return self._models[choice.net], choice.weights

    # --- the pipeline ------------------------------------------------------------------------------------
    def stylize(
        self,
        name: str,
        image: np.ndarray,
        options: StylizeOptions = StylizeOptions(),
        on_run: Callable[[int, float], None] | None = None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Stylise an (H, W, 3) uint8 image with model ``name``; tiles images above ``tile_threshold``.

        ``name``: a model, or a style of a multi-style net (``choose``); ``weights``: a multi-style net's
        (S,) style weights (``StyleChoice.weights``). ``on_run(images, seconds)`` is told of each ONNX
        Runtime run (none for strength 0), for metrics."""
        model, weights = self._target(name, weights)  # unknown names fail before any work
        content = self.prepare(image, options)
        if options.strength == 0.0:
            return content.copy()  # nothing of the style is kept: skip the network

        def run(images: list[np.ndarray]) -> list[np.ndarray]:
            start = time.perf_counter()
            out = _run(model, images, None if weights is None else [weights] * len(images))
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

    def run_batch(
        self, name: str, batch: list[np.ndarray], weights: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """One network run over same-size prepared images; returns the raw stylised uint8 images.
        ``weights``: for a multi-style net, each image's (S,) style weights (rows may differ)."""
        model = self._model(name)
        if not batch:
            return []
        for im in batch:
            _check_image(im)
        if len({im.shape for im in batch}) != 1:
            raise InvalidArgument(
                f"Images in one batch must share a size, got {sorted({im.shape for im in batch})}."
            )
        return _run(model, batch, weights)

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
