"""Fuzz targets and harnesses (docs/fuzzing.md). The targets are plain functions so CI replays them
without atheris; ``fuzz/atheris_main.py`` drives them with coverage-guided atheris."""
