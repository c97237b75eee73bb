"""The image decoder under hostile bytes: the checked-in corpus replayed, then Hypothesis over the same
target (``fuzz/targets.py``), so CI needs no atheris build. ``scripts/fuzz.sh`` runs atheris on it.

The property: ``decode_image`` / ``load_image`` under the server's limits return an (H, W, 3) uint8 array
within the pixel limit, or raise a typed error; never anything else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.grpc_strategies import mutated
from fuzz.hypo import fuzz_settings
from fuzz.make_corpus import decoder_seeds, png_header_only
from fuzz.targets import check_decode, check_load, decoder_target, server_limits
from service.core.errors import ImageTooLarge, InvalidImage
from service.core.imageio import ImageLimits, decode_image

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "decoder"
SEEDS = sorted(CORPUS.iterdir())
SMALL = ImageLimits(max_bytes=64 * 1024, max_pixels=10_000)


def test_the_corpus_holds_the_generated_seeds() -> None:
    """The checked-in seeds are what ``python -m fuzz.make_corpus`` writes (so they can be regenerated)."""
    for name, data in decoder_seeds().items():
        assert (CORPUS / name).read_bytes() == data, name


@pytest.mark.parametrize("path", SEEDS, ids=[p.name for p in SEEDS])
def test_corpus_replays_without_a_crash(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    decoder_target(data)
    check_load(data, tmp_path)


def test_the_valid_seeds_decode_and_the_broken_ones_are_refused() -> None:
    # The corpus is only useful if it exercises both outcomes; this also pins the bomb check.
    decoded = {p.name for p in SEEDS if check_decode(p.read_bytes()) is not None}
    assert {"rgb.png", "cmyk.jpg", "grey16.png", "animated.gif", "rgba.webp", "float.tiff"} <= decoded
    assert not decoded & {"bomb_header.png", "zero_width.png", "truncated.png", "eps_header.eps"}
    with pytest.raises(ImageTooLarge):
        decode_image(png_header_only(100_000, 100_000), server_limits())
    with pytest.raises(InvalidImage):
        decode_image((CORPUS / "eps_header.eps").read_bytes(), server_limits())


SEED_BYTES = st.sampled_from([p.read_bytes() for p in SEEDS if p.stat().st_size > 0])


@fuzz_settings(150)
@given(data=st.one_of(SEED_BYTES.flatmap(mutated), st.binary(max_size=512)))
def test_mutated_images_decode_or_raise_a_typed_error(data: bytes) -> None:
    decoder_target(data)
    check_decode(data, SMALL)  # tight limits reach the refusal paths with ordinary seeds


@fuzz_settings(30)
@given(data=SEED_BYTES.flatmap(mutated))
def test_load_image_agrees_with_decode_image(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    check_load(data, tmp_path_factory.mktemp("load"))
