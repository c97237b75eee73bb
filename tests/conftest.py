"""Shared fixtures: the embedded backbone once per session, scikit-image photos as test images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.core.backbones import Backbone, get_backbone


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    # CI has 2 cores; keep torch from oversubscribing them alongside server threads.
    torch.set_num_threads(2)


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
