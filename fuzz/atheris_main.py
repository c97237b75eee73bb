"""Coverage-guided fuzzing of one target with atheris (libFuzzer): ``python -m fuzz.atheris_main TARGET
[--skip-known] [libFuzzer flags]``, e.g. ``python -m fuzz.atheris_main decoder -max_total_time=60 DIR``.

``--skip-known`` steps over the crashes already filed (``targets.KNOWN_CRASHES``).

Targets are in ``fuzz/targets.py``: ``decoder`` (``decode_image``/``load_image`` under the server's image
limits) and ``options`` (every algorithm's option parsing and planning, and the REST text helpers). A
typed ``AtelierError`` is an expected outcome; anything else escapes and libFuzzer records a crash file
(``-artifact_prefix=``), which ``tests/test_fuzz_*.py`` replays once it is copied into the corpus.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import atheris

    if len(argv) < 2 or argv[1] not in ("decoder", "options"):
        raise SystemExit("usage: python -m fuzz.atheris_main decoder|options [libFuzzer flags] [corpus dirs]")
    name = argv[1]
    skip_known = "--skip-known" in argv
    flags = [a for a in argv[2:] if a != "--skip-known"]
    # Instrument the project's code and Pillow's Python plug-ins (the parsers hostile bytes reach), so
    # coverage feedback steers the mutations; numpy and torch are left alone (slow, not the target).
    with atheris.instrument_imports(include=["service", "fuzz", "PIL"]):
        from fuzz import targets

    inner = targets.TARGETS[name]

    def target(data: bytes) -> None:
        try:
            inner(data)
        except Exception as exc:
            if not (skip_known and targets.is_known_crash(exc)):
                raise

    if name == "options":
        targets.options_target(b"")  # load the backbone once before fuzzing starts
    atheris.Setup([argv[0], *flags], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
