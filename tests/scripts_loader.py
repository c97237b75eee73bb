"""Import a file of scripts/ (not a package) as a module, for the tests of its pure functions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(stem: str, module_name: str | None = None) -> ModuleType:
    """scripts/<stem>.py as the module ``module_name`` (default: the stem), registered in sys.modules
    because dataclasses look their module up by name."""
    name = module_name or stem
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
