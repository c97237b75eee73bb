"""The manifest's optional ``styles`` field (multi-style nets, issue #19): a round trip keeps it, a
single-style manifest rewrites byte for byte, and a malformed list is refused with the entry's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.core.errors import ModelLoadError
from service.core.stylize.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    add_to_manifest,
    read_manifest,
    write_manifest,
)

SINGLE = ManifestEntry("starry_night", "starry_night", "mobile2", "2", "s.onnx", "a" * 64, "s.json")
MULTI = ManifestEntry(
    "multi", "multi", "mobile2_multi", "1", "multi.mobile2_multi.onnx", "b" * 64, "multi.json",
    styles=("starry_night", "the_scream", "great_wave"),
)  # fmt: skip


def test_styles_round_trip_as_a_json_list(tmp_path: Path) -> None:
    add_to_manifest(tmp_path, SINGLE)
    add_to_manifest(tmp_path, MULTI)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert raw["models"][1]["styles"] == ["starry_night", "the_scream", "great_wave"]
    assert "styles" not in raw["models"][0]  # absent for a single-style net, not null
    assert read_manifest(tmp_path) == [SINGLE, MULTI]
    assert read_manifest(tmp_path)[1].styles == ("starry_night", "the_scream", "great_wave")


def test_a_single_style_manifest_rewrites_byte_identical(tmp_path: Path) -> None:
    models = [SINGLE.to_dict(), {**SINGLE.to_dict(), "name": "b", "fp16_file": "b.fp16.onnx",
              "fp16_sha256": "c" * 64}]  # fmt: skip
    path = tmp_path / MANIFEST_NAME
    write_manifest(tmp_path, [ManifestEntry.from_dict(m) for m in models])
    before = path.read_bytes()
    write_manifest(tmp_path, read_manifest(tmp_path))
    assert path.read_bytes() == before


@pytest.mark.parametrize("styles", ["starry_night", [], ["a", "a"], ["a", 3], ["a", ""]])
def test_malformed_styles_are_refused_with_the_entry_name(tmp_path: Path, styles: object) -> None:
    item = {**MULTI.to_dict(), "styles": styles}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"version": 1, "models": [item]}))
    with pytest.raises(ModelLoadError, match=r"'multi'.*styles"):
        read_manifest(tmp_path)
    errors: dict[str, str] = {}
    assert read_manifest(tmp_path, errors=errors) == [] and "multi" in errors
