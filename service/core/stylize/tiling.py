"""Overlapping tiles with raised-cosine blending, for images too large to stylise in one pass.

A transform network's instance norm computes its statistics over whatever it is given, so each tile is
normalised with its own mean and variance and comes out with slightly different colours. Hard tile edges
would show that as a step. Here tiles overlap by ``overlap`` pixels and are blended with weights that rise
as a raised cosine (Hann window half, as in overlap-add synthesis) from zero at a tile's inner edge to one
at ``overlap`` pixels in: the colour shift is spread over the overlap, so no step remains, and a tile's
border pixels (where zero/reflection padding distorts a conv net's output) get almost no weight.

All tiles have the same size (the last tile in a row or column is moved back to fit), so they can be run
as batches in one ONNX Runtime call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from service.core.errors import InvalidArgument

TileFn = Callable[[list[np.ndarray]], list[np.ndarray]]  # same-size uint8 tiles -> same-size outputs


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping by at least ``overlap``.

    Every start is a multiple of ``align`` (``length - tile`` must be one too; ``run_tiled`` pads to make
    it so), so each tile sees the same sampling grid as the whole image does in a strided network.
    """
    if tile <= 0 or overlap < 0 or align < 1:
        raise InvalidArgument(f"tile size must be positive and overlap non-negative, got {tile}, {overlap}.")
    if length <= tile:
        return [0]
    if overlap + align > tile:
        raise InvalidArgument(f"tile overlap ({overlap}) must be smaller than the tile size ({tile}).")
    if (length - tile) % align:
        raise InvalidArgument(f"length - tile ({length - tile}) must be a multiple of align ({align}).")
    stride = tile - overlap - (align - 1)  # room for rounding each start to the grid
    count = -(-(length - tile) // stride) + 1  # ceil division: enough tiles to reach the end
    # Spread the tiles evenly so every overlap is at least ``overlap`` (the last one is not a sliver).
    return [align * round(i * (length - tile) / (count - 1) / align) for i in range(count)]


def _ramp(n: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """1-D weights of length ``n``: raised-cosine ramps of ``overlap`` pixels on the sides that rise/fall."""
    w = np.ones(n, dtype=np.float64)
    if overlap <= 0:
        return w
    k = min(overlap, n // 2)
    # 0.5 - 0.5 cos(pi t) sampled at pixel centres t = (i + 0.5) / k: near 0 at the outermost pixel, near 1
    # at the inner end, and a rising and a falling ramp over the same k pixels sum to exactly 1.
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)
    if rise:
        w[:k] = edge
    if fall:
        w[n - k :] = edge[::-1]
    return w


def tile_weights(
    height: int, width: int, overlap: int, top: bool, bottom: bool, left: bool, right: bool
) -> np.ndarray:
    """(height, width) blend weights; a side ramps only when another tile lies beyond it."""
    return np.outer(_ramp(height, overlap, top, bottom), _ramp(width, overlap, left, right))


def run_tiled(
    image: np.ndarray,
    fn: TileFn,
    tile_size: int,
    overlap: int,
    batch_size: int = 4,
    align: int = 8,
) -> np.ndarray:
    """Apply ``fn`` tile by tile to an (H, W, 3) uint8 image and blend the outputs into one image.

    ``fn`` receives lists of up to ``batch_size`` same-size tiles (one network run each). The result equals
    ``fn([image])[0]`` when the image fits in one tile. ``align`` should be a multiple of the network's
    total stride (4 for the shipped nets): tiles then start on the same pixel grid as the whole image.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidArgument(f"Expected an (H, W, 3) image, got shape {image.shape}.")
    if batch_size < 1:
        raise InvalidArgument(f"batch_size must be at least 1, got {batch_size}.")
    h0, w0 = image.shape[:2]
    th, tw = min(tile_size, h0), min(tile_size, w0)
    # Reflect-pad so every tile starts on the ``align`` grid (cropped off at the end).
    pad_h, pad_w = (-(h0 - th)) % align, (-(w0 - tw)) % align
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    ys, xs = tile_starts(h, th, overlap, align), tile_starts(w, tw, overlap, align)
    boxes = [(y, x) for y in ys for x in xs]
    if len(boxes) == 1:
        return fn([image])[0][:h0, :w0]
    acc = np.zeros((h, w, 3), dtype=np.float64)
    total = np.zeros((h, w, 1), dtype=np.float64)
    for i in range(0, len(boxes), batch_size):
        chunk: Sequence[tuple[int, int]] = boxes[i : i + batch_size]
        outputs = fn([np.ascontiguousarray(image[y : y + th, x : x + tw]) for y, x in chunk])
        for (y, x), out in zip(chunk, outputs, strict=True):
            # The overlap actually present on each side (tiles are spread evenly, so it can exceed
            # ``overlap``); ramp over the requested width, not more, to keep most of each tile at weight 1.
            wts = tile_weights(th, tw, overlap, y > 0, y + th < h, x > 0, x + tw < w)[:, :, None]
            acc[y : y + th, x : x + tw] += out.astype(np.float64) * wts
            total[y : y + th, x : x + tw] += wts
    # Every weight is > 0 (ramps are sampled at pixel centres), so the division is safe.
    return np.ascontiguousarray(np.clip(np.rint(acc / total), 0, 255).astype(np.uint8)[:h0, :w0])
