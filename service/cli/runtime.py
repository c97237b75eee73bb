"""ONNX Runtime for one-shot commands: load the style engine quietly and say once which provider runs.

On a machine without a usable GPU the engine logs why CUDA is dropped and that the models fell back to
the CPU, and ONNX Runtime itself may print its own fallback notes (on stdout, where they would break
``--json``). A command run from the shell wants one line instead:
``atelier: ONNX Runtime provider: CPUExecutionProvider (CUDA not available: ...)`` on stderr.
``-v/--verbose`` keeps every message; ``atelier serve`` never comes here and logs as before.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.core.stylize.engine import StyleEngine
    from service.settings import Settings

ENGINE_LOGGER = "service.core.stylize.engine"
CUDA = "CUDAExecutionProvider"


@dataclass(frozen=True)
class ProviderReport:
    """What ONNX Runtime offers here and what the engine would ask it for, from the settings' order."""

    available: list[str]  # ort.get_available_providers(): compiled into this build
    preferred: list[str]  # the settings' order (ATELIER_ORT_PROVIDERS)
    chosen: list[str]  # preferred minus what cannot run here; the first one is used
    unusable: dict[str, str]  # provider -> why it cannot run here

    def note(self, used: str) -> str:
        """The part in brackets of the provider line: why the GPU is not used, if it is not."""
        if used == CUDA:
            return ""
        if CUDA in self.unusable:
            return f"CUDA not available: {self.unusable[CUDA]}"
        if CUDA in self.chosen:
            return "CUDA failed to start; -v shows ONNX Runtime's reason"
        if CUDA not in self.preferred:
            return "CUDA not requested by ATELIER_ORT_PROVIDERS"
        return ""


def provider_report(preferred: Sequence[str]) -> ProviderReport:
    import onnxruntime as ort

    from service.core.stylize.engine import provider_choice

    chosen, unusable = provider_choice(preferred)
    return ProviderReport(list(ort.get_available_providers()), list(preferred), chosen, unusable)


@contextlib.contextmanager
def quiet_onnxruntime(verbose: bool) -> Iterator[None]:
    """Unless ``verbose``: no engine log records and only ORT's errors while inside. The commands report
    load errors themselves and ``provider_line`` sums up the provider choice."""
    if verbose:  # every message, but ORT's print() notes still on stderr
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    import onnxruntime as ort

    engine_log = logging.getLogger(ENGINE_LOGGER)
    level = engine_log.level
    engine_log.setLevel(logging.CRITICAL)
    # Errors only, for ORT's messages from outside a session; left so, since ORT cannot tell the old value.
    ort.set_default_logger_severity(3)
    # ORT prints its "EP Error ... Falling back" notes with print(): never onto stdout, where JSON goes.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        engine_log.setLevel(level)  # main() may run in a longer process (tests, scripts)


def provider_line(used: str, note: str) -> str:
    return f"atelier: ONNX Runtime provider: {used}" + (f" ({note})" if note else "")


def load_engine(
    settings: Settings, verbose: bool, names: list[str] | None = None, announce: bool = True
) -> StyleEngine:
    """``StyleEngine.load`` for a one-shot command (no warm-up), then the provider line on stderr."""
    from service.core.stylize.engine import StyleEngine

    with quiet_onnxruntime(verbose):
        engine = StyleEngine.load(
            settings.models_dir,
            providers=tuple(settings.ort_providers),
            intra_threads=settings.ort_intra_threads,
            inter_threads=settings.ort_inter_threads,
            tile_threshold=settings.tile_threshold,
            tile_size=settings.tile_size,
            tile_overlap=settings.tile_overlap,
            warmup=False,  # one command, one run: warming up would only double the work
            names=names,
        )
    if announce:
        report = provider_report(settings.ort_providers)
        used = sorted({i.provider for i in engine.styles()}) or report.chosen[:1]
        print(provider_line(", ".join(used), report.note(used[0])), file=sys.stderr)
    return engine
