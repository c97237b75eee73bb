"""Hostile-input corpus for image decoding: every case is a typed error or a correct RGB array."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from service.core.errors import ImageTooLarge, InvalidArgument, InvalidImage
from service.core.imageio import ImageLimits, decode_image, encode_image, resize_max_side


def _png_bytes(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int = 50000, height: int = 50000) -> bytes:
    """A tiny PNG whose header claims width x height (8-bit RGB) with a few bytes of compressed zeros."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def gradient(w: int = 40, h: int = 30) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1).astype(
        np.uint8
    )


BAD_INPUTS: dict[str, Callable[[], bytes]] = {
    "zero bytes": lambda: b"",
    "random bytes": lambda: np.random.default_rng(0).bytes(4096),
    "text file": lambda: b"hello, this is not an image\n" * 20,
    "truncated jpeg": lambda: _jpeg_bytes(Image.fromarray(gradient(256, 256)))[:600],
    "png signature only": lambda: b"\x89PNG\r\n\x1a\n",
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_bytes_are_invalid_image(name: str) -> None:
    with pytest.raises(InvalidImage) as info:
        decode_image(BAD_INPUTS[name]())
    assert str(info.value)  # a message a person can read


def test_header_bomb_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = bomb_png()
    loaded: list[bool] = []
    original = Image.Image.load

    def spy(self: Image.Image) -> object:
        loaded.append(True)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    with pytest.raises(ImageTooLarge, match="50000x50000"):
        decode_image(data)
    assert not loaded, "pixels were decoded before the size check"


def test_encoded_size_limit() -> None:
    data = _png_bytes(Image.fromarray(gradient()))
    with pytest.raises(ImageTooLarge, match="limit"):
        decode_image(data, ImageLimits(max_bytes=len(data) - 1))


def test_pixel_limit() -> None:
    data = _png_bytes(Image.fromarray(gradient(40, 30)))
    with pytest.raises(ImageTooLarge):
        decode_image(data, ImageLimits(max_pixels=40 * 30 - 1))
    assert decode_image(data, ImageLimits(max_pixels=40 * 30)).shape == (30, 40, 3)


def test_one_pixel() -> None:
    out = decode_image(_png_bytes(Image.new("RGB", (1, 1), (10, 20, 30))))
    assert out.shape == (1, 1, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [10, 20, 30]


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(_jpeg_bytes(img, quality=95))
    assert out.shape == (8, 16, 3)
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_16bit_png() -> None:
    arr = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024).astype(np.uint16)
    img = Image.fromarray(arr)
    assert img.mode.startswith("I")
    out = decode_image(_png_bytes(img))
    assert out.shape == (8, 8, 3)
    expected = np.round(arr.astype(np.float64) / 257).astype(np.uint8)
    assert np.abs(out[:, :, 0].astype(int) - expected.astype(int)).max() <= 1
    assert (out[:, :, 0] == out[:, :, 1]).all()


def test_palette_png_with_transparency_composites_on_white() -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    data = _png_bytes(img, transparency=0)
    out = decode_image(data)
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[1, 1].tolist() == [255, 255, 255]  # transparent index -> white background


def test_la_and_rgba() -> None:
    la = Image.new("LA", (3, 3), (100, 255))
    assert decode_image(_png_bytes(la))[0, 0].tolist() == [100, 100, 100]
    rgba = Image.new("RGBA", (3, 3), (0, 0, 255, 0))
    assert decode_image(_png_bytes(rgba))[0, 0].tolist() == [255, 255, 255]


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = decode_image(buf.getvalue())
    assert out.shape == (10, 10, 3)
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 200 and g < 50 and b < 50


def test_exif_rotation_applied() -> None:
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red, right half black
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    out = decode_image(_jpeg_bytes(img, exif=exif, quality=95))
    assert out.shape == (40, 20, 3)
    assert out[:20].reshape(-1, 3)[:, 0].mean() > 200  # red ends up on top after rotating clockwise
    assert out[20:].reshape(-1, 3)[:, 0].mean() < 50


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_all_formats_decode(fmt: str) -> None:
    src = gradient(33, 17)
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, format=fmt)
    out = decode_image(buf.getvalue())
    assert out.shape == (17, 33, 3)
    tolerance = 40 if fmt in ("JPEG", "WEBP", "GIF") else 0
    assert np.abs(out.astype(int) - src.astype(int)).mean() <= max(tolerance / 4, 0.01)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_encode_roundtrip(fmt: str) -> None:
    src = gradient(50, 20)
    data = encode_image(src, fmt, quality=95)
    out = decode_image(data)
    assert out.shape == src.shape
    assert np.abs(out.astype(int) - src.astype(int)).mean() < (0.01 if fmt == "png" else 4)


def test_encode_rejects_bad_options() -> None:
    with pytest.raises(InvalidArgument):
        encode_image(gradient(), "gif")
    with pytest.raises(InvalidArgument):
        encode_image(gradient(), "jpeg", quality=0)


def test_resize_max_side_never_upscales() -> None:
    src = gradient(100, 50)
    assert resize_max_side(src, 200).shape == (50, 100, 3)
    assert resize_max_side(src, 50).shape == (25, 50, 3)
