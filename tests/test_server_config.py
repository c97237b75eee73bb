"""Defaults live only in ``Settings``: the server's config objects are built from it, and the core's own
defaults (the style engine's threads and tiling, the image limits) are the very values Settings uses."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from pydantic import ValidationError

from service.core.imageio import ImageLimits
from service.core.stylize.engine import StyleEngine
from service.server.app import ServerOptions
from service.server.plane.config import PlaneConfig
from service.settings import Settings


def defaults() -> Settings:
    return Settings(_env_file=None)


def test_engine_load_defaults_are_the_settings_defaults() -> None:
    params = inspect.signature(StyleEngine.load).parameters
    s = defaults()
    assert tuple(s.ort_providers) == params["providers"].default
    assert s.ort_intra_threads == params["intra_threads"].default
    assert s.ort_inter_threads == params["inter_threads"].default
    for name in ("tile_threshold", "tile_size", "tile_overlap"):
        assert getattr(s, name) == params[name].default, name
    assert s.image_limits() == ImageLimits()


@pytest.mark.parametrize("cls", [PlaneConfig, ServerOptions], ids=lambda c: c.__name__)
def test_server_configs_have_no_defaults_of_their_own(cls: type) -> None:
    with_default = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert with_default == [], f"{cls.__name__} repeats defaults of Settings: {with_default}"


def test_every_setting_reaches_the_plane_config() -> None:
    s = Settings(
        _env_file=None,
        device="cpu",
        tile_threshold=900,
        tile_size=300,
        tile_overlap=10,
        max_side_stylize=2000,
        max_side_slow=500,
        max_image_bytes=1234,
        batch_max_size=3,
        batch_max_delay_ms=7.0,
        job_workers=2,
        job_queue_limit=5,
        job_result_max_count=9,
    )
    c = PlaneConfig.from_settings(s, warmup=False)
    assert (c.tile_threshold, c.tile_size, c.tile_overlap) == (900, 300, 10)
    assert (c.max_side_stylize, c.max_side_slow, c.limits.max_bytes) == (2000, 500, 1234)
    assert (c.batch_max_size, c.batch_max_delay_ms, c.job_workers, c.job_queue_limit) == (3, 7.0, 2, 5)
    assert c.job_result_max_count == 9 and c.device == "cpu" and not c.warmup
    o = ServerOptions.from_settings(Settings(_env_file=None, grpc_port=0, grace_period_s=2.5))
    assert (o.grpc_port, o.http_port, o.grace_period_s) == (0, defaults().http_port, 2.5)


def test_settings_validate_what_the_server_is_given() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, fast_queue_limit=0)
