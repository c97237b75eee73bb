"""The arbitrary-style engine: WCT (Li et al., NeurIPS 2017, arXiv:1705.08086) on EfficientNet-Lite0 in
ONNX Runtime, any painting at request time.

For each installed level (a ``decoder`` entry of ``models/manifest.json`` and the ``encoder`` its card
names; ``export.py`` writes both), coarse to fine (largest stride first): encode the current image at the
level's tap, whiten and colour its features with the painting's statistics at that tap
(``transform.wct``), decode; the next level starts from that decoded image, as in the paper's multi-level
pipeline (section 3.2). Images are reflect-padded to a multiple of 16 (``decoder.ALIGN``, at least 32)
first and cropped at the end, so every encoder sees the grid it was exported for.

A painting's statistics (``painting_stats``: the painting at ``style_size`` px on its longer side, one
encoder pass per level, one eigendecomposition per tap) are cached by the painting's sha256 and the style
size in a bounded LRU (``cache.StatsCache``). ``strength``, ``preserve_color``, ``max_side`` and tiling
behave as for the named styles: this engine runs them through a ``StyleEngine`` of no models
(``prepare``, ``needs_tiling``, ``finish``) and the same ``run_tiled``, so the rules live in one place.
Thread-safe: ONNX Runtime sessions and the cache may be used from several threads.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.core.arbitrary.cache import CacheInfo, StatsCache, StyleStats
from service.core.arbitrary.levels import ALIGN, TAPS, padded_side
from service.core.arbitrary.transform import feature_stats, wct
from service.core.errors import AtelierError, InvalidArgument, ModelLoadError, NotInstalled, UnknownModel
from service.core.imageio import resize_to
from service.core.stylize.engine import (
    DEFAULT_INTER_THREADS,
    DEFAULT_INTRA_THREADS,
    DEFAULT_PROVIDERS,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    DEFAULT_TILE_THRESHOLD,
    StyleEngine,
    StylizeOptions,
    _check_file,
    _check_image,
    _open_session,
    available_providers,
    session_options,
)
from service.core.stylize.manifest import ManifestEntry, read_card, read_manifest
from service.core.stylize.tiling import run_tiled

log = logging.getLogger(__name__)

MODEL_NAME = "custom"  # the model label of every style-image call: never the painting's sha
DEFAULT_STYLE_SIZE = 512  # the painting's longer side when its statistics are taken, px
MIN_STYLE_SIZE, MAX_STYLE_SIZE = 32, 1024  # a 1024 px painting's finest tap is ~100 MB of float32
DEFAULT_CACHE_ENTRIES = 64
DEFAULT_CACHE_BYTES = 128 * 1024 * 1024
# The serving settings, chosen on training-side paintings only (docs/bench/arbitrary_tuning.md).
DEFAULT_ALPHA = 1.0
DEFAULT_HALF_LEVELS = 0
DEFAULT_DETAIL_OCTAVES = 1  # one octave of the photo after each coarse level
MAX_DETAIL_OCTAVES = 5  # images are padded to a multiple of 32 = 2^5, so five halvings stay exact
COARSE_STRIDE = 4  # levels at this stride or more are the coarse ones (detail_octaves)
NOT_INSTALLED = (
    "No arbitrary-style model is installed on this server (the models folder has no WCT decoder), so a "
    "style image cannot be used; pass a style name from ListStyles / GET /v1/styles instead."
)


@dataclass(frozen=True)
class ArbitraryOptions(StylizeOptions):
    style_size: int = DEFAULT_STYLE_SIZE  # the painting's longer side for its statistics (scale of strokes)

    def check(self) -> None:
        super().check()
        if not MIN_STYLE_SIZE <= self.style_size <= MAX_STYLE_SIZE:
            raise InvalidArgument(
                f"style_size must be between {MIN_STYLE_SIZE} and {MAX_STYLE_SIZE}, got {self.style_size}."
            )


@dataclass(frozen=True)
class LevelInfo:
    tap: str
    stride: int
    channels: int
    version: str
    encoder: str  # manifest names
    decoder: str
    provider: str


@dataclass
class _Level:
    info: LevelInfo
    encoder: Any  # onnxruntime.InferenceSession
    decoder: Any

    def run(self, session: Any, name: str, feed: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return np.asarray(session.run([name], feed)[0], dtype=np.float32)
        except Exception as exc:  # ORT's own exception classes: a failure on our side, said in one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AtelierError(f"WCT level {self.info.tap} failed: {first}") from None


def _pad(x: np.ndarray, align: int = ALIGN) -> np.ndarray:
    """(N, 3, H, W) reflect-padded right/bottom to a multiple of ``align``, at least 2 * ``align``."""
    h, w = x.shape[2:]
    ph, pw = max(padded_side(h, align), 2 * align) - h, max(padded_side(w, align), 2 * align) - w
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect") if ph or pw else x


def _half(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W), H and W even -> the 2x2 means, (N, C, H / 2, W / 2)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5), dtype=np.float32)


def _low(x: np.ndarray, octaves: int) -> np.ndarray:
    """The low band of ``x``: halved and enlarged ``octaves`` times (sides divisible by 2^octaves)."""
    small = x
    for _ in range(octaves):
        small = _half(small)
    for _ in range(octaves):
        small = _double(small)
    return small


def _double(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C, 2H, 2W), bilinear with pixel centres aligned (PyTorch's
    ``align_corners=False``): each new pixel is 3/4 of its nearest old one and 1/4 of the next, edges
    clamped."""
    for axis in (2, 3):
        prev = np.concatenate([x.take([0], axis), x.take(range(x.shape[axis] - 1), axis)], axis)
        nxt = np.concatenate([x.take(range(1, x.shape[axis]), axis), x.take([-1], axis)], axis)
        out = np.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis=axis + 1)
        shape = list(x.shape)
        shape[axis] *= 2
        x = out.reshape(shape)
    return x.astype(np.float32, copy=False)


def _level_order(info: LevelInfo) -> tuple[int, int]:
    return (-info.stride, -TAPS.index(info.tap))  # coarse first; at one stride, the deeper tap first


def _load_level(
    folder: Path, dec: ManifestEntry, by_name: dict[str, ManifestEntry], providers: list[str], options: Any
) -> _Level:
    card = read_card(folder / dec.card)
    tap, enc_name = str(card.extra.get("tap", "")), str(card.extra.get("encoder", ""))
    if tap not in TAPS or enc_name not in by_name:
        raise ModelLoadError(f"decoder {dec.name}: its card names tap {tap!r} and encoder {enc_name!r}")
    enc = by_name[enc_name]
    enc_session = _open_session(_check_file(folder, enc.file, enc.sha256), providers, options)
    dec_session = _open_session(_check_file(folder, dec.file, dec.sha256), providers, options)
    info = LevelInfo(
        tap=tap,
        stride=int(card.extra.get("stride", 0)),
        channels=int(card.extra.get("channels", 0)),
        version=dec.version,
        encoder=enc.name,
        decoder=dec.name,
        provider=dec_session.get_providers()[0],
    )
    level = _Level(info, enc_session, dec_session)
    # Probe: a 32 px grey image through both graphs, shapes as the card says (a wrong pair is refused).
    f = level.run(enc_session, "features", {"input": np.full((1, 3, 32, 32), 127.0, np.float32)})
    if f.shape[1] != info.channels or f.shape[2] * info.stride != 32:
        raise ModelLoadError(
            f"encoder {enc.name} gives {f.shape} for 32 px, not {info.channels} ch at 1/{info.stride}"
        )
    y = level.run(dec_session, "output", {"features": f})
    if y.shape != (1, 3, 32, 32) or not np.isfinite(y).all():
        raise ModelLoadError(f"decoder {dec.name} gives {y.shape} (or non-finite values) for 32 px")
    return level


@dataclass
class ArbitraryStyleEngine:
    """Loaded WCT levels; build with ``ArbitraryStyleEngine.load``. ``installed`` is False when the models
    folder has none (every style-image call then raises ``NotInstalled``)."""

    base: StyleEngine  # no models: its prepare / needs_tiling / finish, the named styles' rules
    alpha: float = 1.0  # WCT blend in feature space at every level (the paper's alpha)
    half_levels: int = 0  # the coarsest levels that run at half the image size (and half the style size)
    detail_octaves: int = 0  # after each coarse level, the photo's finest octaves replace the picture's
    cache: StatsCache = field(default_factory=StatsCache)
    load_errors: dict[str, str] = field(default_factory=dict)
    _levels: list[_Level] = field(default_factory=list)

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
        alpha: float = DEFAULT_ALPHA,
        levels: Collection[str] | None = None,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        half_levels: int = DEFAULT_HALF_LEVELS,
        detail_octaves: int = DEFAULT_DETAIL_OCTAVES,
    ) -> ArbitraryStyleEngine:
        """Load every decoder of ``models_dir/manifest.json`` (or only the taps in ``levels``) with its
        encoder; failures go to ``load_errors``. Taps in ``levels`` with no decoder raise ``UnknownModel``.

        ``half_levels``: that many of the coarsest levels run on the image at half its size, with the
        painting's statistics at half the style size (so a stroke keeps its size relative to the picture);
        the result is enlarged x2 for the finer levels. A coarse tap sees the picture at 1/8 or 1/16 and its
        decoder paints no fine detail, so the halving loses little and saves three quarters of those
        levels' cost.

        ``detail_octaves``: after each coarse level (stride ``COARSE_STRIDE`` or more), the picture keeps
        its low band and takes the photo's top ``detail_octaves`` octaves instead of its own (Laplacian
        pyramid bands, Burt & Adelson 1983), so the fine levels start from the photo's edges rather than
        the coarse decoders' blur: ``x = low(x) + photo - low(photo)``, ``low`` = halve and enlarge that
        many times. The coarse levels still set the colours and the large shapes of the style."""
        if not 0.0 < alpha <= 1.0:
            raise InvalidArgument(f"alpha must be in (0, 1], got {alpha}.")
        if half_levels < 0:
            raise InvalidArgument(f"half_levels must be 0 or more, got {half_levels}.")
        if not 0 <= detail_octaves <= MAX_DETAIL_OCTAVES:
            raise InvalidArgument(f"detail_octaves must be 0..{MAX_DETAIL_OCTAVES}, got {detail_octaves}.")
        # The named styles' tiling and finishing rules, from an engine of no models (validated as there).
        base = StyleEngine(tile_threshold=tile_threshold, tile_size=tile_size, tile_overlap=tile_overlap)
        engine = cls(base, alpha, half_levels, detail_octaves, StatsCache(cache_entries, cache_bytes))
        folder = Path(models_dir)
        try:
            entries = read_manifest(folder, errors={})
        except ModelLoadError as exc:
            engine.load_errors["manifest.json"] = str(exc)
            return engine
        by_name = {e.name: e for e in entries if e.kind == "encoder"}
        chosen, options = available_providers(providers), session_options(intra_threads, inter_threads)
        for dec in (e for e in entries if e.kind == "decoder"):
            try:
                level = _load_level(folder, dec, by_name, chosen, options)
            except ModelLoadError as exc:
                engine.load_errors[dec.name] = str(exc)
                log.error("arbitrary-style level %s skipped: %s", dec.name, exc)
                continue
            engine._levels.append(level)
        if levels is not None:
            found = {lv.info.tap for lv in engine._levels}
            for tap in levels:
                if tap not in found:
                    raise UnknownModel("WCT level", tap, found)
            engine._levels = [lv for lv in engine._levels if lv.info.tap in levels]
        engine._levels.sort(key=lambda lv: _level_order(lv.info))
        return engine

    # --- queries -----------------------------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return bool(self._levels)

    def levels(self) -> list[LevelInfo]:
        return [lv.info for lv in self._levels]

    @property
    def version(self) -> str:
        return "+".join(f"{lv.info.tap}:{lv.info.version}" for lv in self._levels)

    @property
    def provider(self) -> str:
        return self._levels[0].info.provider if self._levels else ""

    def cache_info(self) -> CacheInfo:
        return self.cache.info()

    def require(self) -> None:
        if not self._levels:
            raise NotInstalled(NOT_INSTALLED)

    # --- the painting ------------------------------------------------------------------------------------
    def style_key(self, painting_sha256: str, style_size: int) -> str:
        """The cache key: the painting's sha256 and the size its statistics were taken at."""
        return f"{painting_sha256}:{style_size}"

    def painting_stats(self, painting: np.ndarray, style_size: int = DEFAULT_STYLE_SIZE) -> StyleStats:
        """Per-tap WCT statistics of an (H, W, 3) uint8 painting at ``style_size`` px on its longer side."""
        self.require()
        _check_image(painting)
        halved = self._half_count()
        stats: StyleStats = {}
        for i, level in enumerate(self._levels):
            side = max(1, style_size // 2) if i < halved else style_size
            scale = side / max(painting.shape[:2])
            h, w = max(1, round(painting.shape[0] * scale)), max(1, round(painting.shape[1] * scale))
            x = _pad(resize_to(painting, w, h).transpose(2, 0, 1)[None].astype(np.float32))
            s = level.info.stride
            f = level.run(level.encoder, "features", {"input": x})[0]
            # Only the painting's own positions: the reflected padding would count some strokes twice.
            stats[level.info.tap] = feature_stats(f[:, : -(-h // s), : -(-w // s)])
        return stats

    def style_stats(
        self, painting_sha256: str, style_size: int, painting: Callable[[], np.ndarray]
    ) -> tuple[StyleStats, bool]:
        """Cached statistics of the painting with this sha256, or ``painting()``'s, computed and kept.
        ``painting`` is called only on a miss (so a repeated painting is not even decoded). Returns
        (statistics, hit)."""
        self.require()
        key = self.style_key(painting_sha256, style_size)
        return self.cache.get_or_compute(key, lambda: self.painting_stats(painting(), style_size))

    # --- the pipeline ------------------------------------------------------------------------------------
    def _half_count(self) -> int:
        """How many levels run at half size: ``half_levels``, but never the finest one."""
        return min(self.half_levels, max(0, len(self._levels) - 1))

    def _through(self, levels: list[_Level], x: np.ndarray, stats: StyleStats) -> np.ndarray:
        for level in levels:
            f = level.run(level.encoder, "features", {"input": x})
            coloured = np.stack([wct(fi, stats[level.info.tap], self.alpha) for fi in f])
            x = level.run(level.decoder, "output", {"features": coloured})
        return x

    def _run(self, images: list[np.ndarray], stats: StyleStats) -> list[np.ndarray]:
        """Same-size (H, W, 3) uint8 images through every level -> uint8 images of that size."""
        h, w = images[0].shape[:2]
        half = self._half_count()
        # A grid of 32 px: the half-size image is still on the encoders' 16 px grid, and five halvings
        # (detail_octaves) stay exact.
        photo = _pad(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32), 2 * ALIGN)
        octaves, fine_band = self.detail_octaves, None
        if octaves:
            fine_band = photo - _low(photo, octaves)
        x = photo
        for i, level in enumerate(self._levels):
            if i == 0 and half:
                x = _half(x)
            x = self._through([level], x, stats)
            if i == half - 1:
                x = _double(x)
            # After each coarse level back at full size: its own low band, the photo's fine band.
            if fine_band is not None and i >= half - 1 and level.info.stride >= COARSE_STRIDE:
                x = np.clip(_low(x, octaves) + fine_band, 0.0, 255.0)
        out = np.clip(np.rint(x[:, :, :h, :w]), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        return [np.ascontiguousarray(o) for o in out]

    def stylize(
        self,
        image: np.ndarray,
        stats: StyleStats,
        options: ArbitraryOptions = ArbitraryOptions(),
        on_run: Callable[[int, float], None] | None = None,
    ) -> np.ndarray:
        """Stylise an (H, W, 3) uint8 image with a painting's statistics (``style_stats`` or
        ``painting_stats``); tiles above the tile threshold. ``on_run(images, seconds)`` is told of each
        pass through the levels."""
        self.require()
        missing = [lv.info.tap for lv in self._levels if lv.info.tap not in stats]
        if missing:
            raise InvalidArgument(f"The style statistics lack the taps {', '.join(missing)}.")
        content = self.base.prepare(image, options)
        if options.strength == 0.0:
            return content.copy()  # nothing of the style is kept: skip the networks

        def run(images: list[np.ndarray]) -> list[np.ndarray]:
            start = time.perf_counter()
            out = self._run(images, stats)
            if on_run is not None:
                on_run(len(images), time.perf_counter() - start)
            return out

        if self.base.needs_tiling(content):
            # Each tile is whitened with its own statistics; the overlap blend hides the differences.
            stylized = run_tiled(content, run, self.base.tile_size, self.base.tile_overlap, 1, ALIGN)
        else:
            stylized = run([content])[0]
        return self.base.finish(content, stylized, options)

    def stylize_with(
        self, image: np.ndarray, painting: np.ndarray, options: ArbitraryOptions = ArbitraryOptions()
    ) -> np.ndarray:
        """``stylize`` with a decoded painting, its statistics cached by the sha256 of its pixels."""
        options.check()
        digest = hashlib.sha256(np.ascontiguousarray(painting).tobytes()).hexdigest()
        stats, _ = self.style_stats(f"pixels-{digest}", options.style_size, lambda: painting)
        return self.stylize(image, stats, options)

    def close(self) -> None:
        self._levels.clear()
        self.cache.clear()

    def __enter__(self) -> ArbitraryStyleEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
