"""The micro-batching default follows the provider the models run on: off on the CPU (where waiting for a
batch lowers throughput, docs/bench/batching_cpu.md), 5 ms on CUDA; an explicit value always wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from service.core.imageio import encode_image
from service.server.plane.batching import ACCELERATED_DELAY_MS, default_delay_ms
from service.server.plane.config import PlaneConfig
from service.server.plane.dataplane import DataPlane
from service.settings import Settings
from tests.liveserver import server_settings

CONCURRENT = 6


def test_default_delay_by_provider() -> None:
    assert default_delay_ms(["CPUExecutionProvider"]) == 0.0
    assert default_delay_ms(["CUDAExecutionProvider"]) == ACCELERATED_DELAY_MS > 0
    assert default_delay_ms(["CPUExecutionProvider", "TensorrtExecutionProvider"]) == ACCELERATED_DELAY_MS
    assert default_delay_ms([]) == 0.0
    assert Settings(_env_file=None).batch_max_delay_ms is None  # unset: chosen once the models load


async def batch_sizes(config: PlaneConfig, image: bytes) -> tuple[bool, list[int]]:
    """Start a plane, send ``CONCURRENT`` same-size Stylize calls at once; (batching on, batch sizes)."""
    plane = DataPlane(config)
    try:
        await plane.start()
        results = await asyncio.gather(*(plane.stylize(image, "starry_night") for _ in range(CONCURRENT)))
        return plane.batcher.enabled, [r.batch_size for r in results]
    finally:
        await plane.close(1.0)


@pytest.mark.parametrize(
    ("delay_ms", "batched"),
    [(None, False), (100.0, True), (0.0, False)],
    ids=["cpu-default", "explicit-100ms", "explicit-0"],
)
def test_cpu_default_is_off_and_an_explicit_delay_batches(
    models_dir: Path, chelsea: np.ndarray, delay_ms: float | None, batched: bool
) -> None:
    config = PlaneConfig.from_settings(server_settings(models_dir, batch_max_delay_ms=delay_ms), warmup=False)
    enabled, sizes = asyncio.run(batch_sizes(config, encode_image(chelsea[:64, :96], "png")))
    assert enabled is batched
    if batched:
        assert max(sizes) > 1, sizes  # concurrent same-size calls shared a run
    else:
        assert sizes == [1] * CONCURRENT
