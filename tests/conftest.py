"""Shared fixtures: the embedded backbone once per session, scikit-image photos as test images, and the
live servers (one shared server for gRPC and REST tests alike, and a factory for servers of their own)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone, get_backbone
from tests.liveserver import BROKEN, STYLES, LiveServer, ServerProcess, StartServer, server_settings
from tests.tinymodels import write_tiny_models

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from tests.webpage import Tab


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    # CI has 2 cores; keep torch from oversubscribing them alongside server threads.
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module of tiny nets and batches (``pytestmark = usefixtures(...)``): with
    two, synchronisation costs more than it saves on a 2-core runner."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def lite0() -> Backbone:
    return get_backbone("efficientnet_lite0")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.chelsea())


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.coffee())


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of four scikit-image photos as 64 px JPEGs: a training set for the style-net tests."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        img.thumbnail((64, 64))
        img.save(folder / f"{name}.jpg", quality=90)
    return folder


# --- live servers (tests/liveserver.py) -----------------------------------------------------------------
@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, lite0: Backbone) -> Path:
    """Tiny style nets named like the shipped ones, a broken one, and tiny WCT levels (a style image)."""
    from tests.arbitrary_models import install_tiny_levels

    folder = write_tiny_models(tmp_path_factory.mktemp("models"), names=STYLES, corrupt=(BROKEN,))
    return install_tiny_levels(folder, lite0)


@pytest.fixture(scope="session")
def live(models_dir: Path) -> Iterator[LiveServer]:
    """The one shared server (gRPC and REST on 127.0.0.1, ``TEST_SETTINGS``), for every test that can
    share it: tests leave it as they found it (jobs cancelled, nothing reconfigured)."""
    server = LiveServer(server_settings(models_dir))
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def start_server(models_dir: Path) -> Iterator[StartServer]:
    """``start_server(**settings)``: a server of its own for a test that changes settings or the
    server's state (readiness, a failing start), closed after the test. ``start=False`` returns it
    unstarted, ``load_models=False`` started without models, ``warmup=False`` skips warm-up runs, and
    ``process=True`` makes it the ``python -m service serve`` process instead (``ServerProcess``)."""
    servers: list[LiveServer | ServerProcess] = []

    def start(
        start: bool = True,
        load_models: bool = True,
        warmup: bool = True,
        process: bool = False,
        **settings: Any,
    ) -> LiveServer | ServerProcess:
        config = server_settings(settings.pop("models_dir", models_dir), **settings)
        server = ServerProcess(config) if process else LiveServer(config, warmup=warmup)
        servers.append(server)
        return server.start(load_models=load_models) if start else server

    yield start
    for server in servers:
        server.close()


# --- the browser of the web page tests (tests/webpage.py) -----------------------------------------------
@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One headless Debian chromium for every page test; each test gets a new tab (``tab``)."""
    from playwright.sync_api import expect, sync_playwright

    from tests.webpage import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        pytest.fail(
            f"{CHROMIUM} is missing: the web page tests need Debian's chromium "
            "(apt-get install -y --no-install-recommends chromium; .ci/run does this)."
        )
    profile = tmp_path_factory.mktemp("chromium-profile")  # a new, empty user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=found,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # expect() has its own default (5 s), too short on a busy CI
        yield context
        context.close()


@pytest.fixture
def tab(browser: BrowserContext) -> Iterator[Tab]:
    from tests.webpage import Tab

    t = Tab(browser)
    yield t
    t.page.close()
