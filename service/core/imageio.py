"""Image decoding and encoding: the one module every entry point uses for image bytes.

Hostile input is the normal case for a public endpoint, so decoding is defensive:

* the encoded size is checked before anything is parsed;
* the header is read (Pillow opens lazily) and the pixel count is checked *before* pixels are decoded,
  so a decompression bomb (a small PNG whose header claims 50000x50000) is refused without allocating;
* only raster formats we serve are accepted (no EPS/PDF/ICO plug-ins reachable from user bytes);
* every failure becomes ``InvalidImage`` or ``ImageTooLarge`` with a message a person understands.

Decoded images are always (H, W, 3) uint8 RGB numpy arrays with EXIF orientation applied.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error  # Pillow's TIFF and PNG readers raise it on bad headers

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.core.errors import ImageTooLarge, InvalidArgument, InvalidImage, quoted

# Formats accepted from user bytes. Pillow's other plug-ins (EPS via Ghostscript, PSD, ICO, ...) are
# deliberately not reachable.
DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
ENCODE_FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
MIME_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}

# Pillow's own bomb guard raises only above 2x this; we do our own check first and keep theirs as a
# backstop that can never be lower than ours.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied before decoding. Defaults: 32 MiB encoded, 50 megapixels decoded."""

    max_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 50_000_000

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("image limits must be positive")


DEFAULT_LIMITS = ImageLimits()


def _human_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def check_pixel_count(width: int, height: int, limits: ImageLimits) -> None:
    """Raise ``ImageTooLarge`` if ``width x height`` is above the limit."""
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"Image is {width}x{height} = {width * height / 1e6:.1f} megapixels; "
            f"the limit is {limits.max_pixels / 1e6:.1f} megapixels."
        )


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Convert any decoded mode to (H, W, 3) uint8 RGB. Transparency is composited onto white."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit int) greyscale: scale the 16-bit range down to 8 bits.
        arr = np.asarray(img, dtype=np.float64)
        scale = 257.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 1.0
        grey = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        grey = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        # L, 1, CMYK, YCbCr, LAB, HSV: Pillow's converters handle these (CMYK JPEGs included).
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(arr)


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode image bytes to an (H, W, 3) uint8 RGB array.

    Accepts JPEG, PNG, WebP, BMP, TIFF and GIF (first frame). Applies EXIF orientation. Raises
    ``ImageTooLarge`` before decoding when the bytes or the header's pixel count exceed ``limits``,
    and ``InvalidImage`` for anything that is not a readable image.
    """
    return decode_with(data, limits, _to_rgb)


def decode_with(
    data: bytes, limits: ImageLimits, convert: Callable[[Image.Image], np.ndarray], what: str = "image"
) -> np.ndarray:
    """``decode_image``'s checks and decoding, with ``convert`` turning the oriented first frame into an
    array (RGB for photos; a mask's alpha or luminance, ``stylize.regions``). ``what`` names the upload in
    the messages."""
    noun = f"The {what}"
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImage(f"Expected {what} bytes, got {type(data).__name__}.")
    size = len(data)
    if size == 0:
        raise InvalidImage(f"{noun} is empty (0 bytes).")
    if size > limits.max_bytes:
        raise ImageTooLarge(f"{noun} is {_human_bytes(size)}; the limit is {_human_bytes(limits.max_bytes)}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(bytes(data)), formats=list(DECODE_FORMATS))
            with img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise InvalidImage(f"{noun}'s header gives an empty size {width}x{height}.")
                # The check that stops decompression bombs: header only, no pixels allocated yet.
                check_pixel_count(width, height, limits)
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)  # animated GIF / WebP / multi-page TIFF: first frame only
                img.load()
                oriented = ImageOps.exif_transpose(img)
                return convert(oriented if oriented is not None else img)
    except (ImageTooLarge, InvalidImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{noun} was refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidImage(
            f"{noun} is not an image in a supported format (JPEG, PNG, WebP, BMP, TIFF or GIF)."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct_error) as exc:
        # Truncated files, broken chunks, bad TIFF tags: Pillow raises a zoo of exception types.
        raise InvalidImage(f"{noun} could not be decoded (corrupt or truncated): {exc}") from None
    except MemoryError:
        raise ImageTooLarge(f"{noun} needs more memory to decode than is available.") from None


def load_image(path: str | Path, limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Read and decode an image file (same checks as ``decode_image``)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise InvalidArgument(f"Image file not found: {p}") from None
    except OSError as exc:
        raise InvalidArgument(f"Cannot read image file {p}: {exc.strerror or exc}") from None
    if p.is_dir():
        raise InvalidArgument(f"Expected an image file, got a directory: {p}")
    if size > limits.max_bytes:
        raise ImageTooLarge(
            f"{p.name} is {_human_bytes(size)}; the limit is {_human_bytes(limits.max_bytes)}."
        )
    return decode_image(p.read_bytes(), limits)


def normalize_format(fmt: str) -> str:
    """Return the canonical lower-case format name ('png', 'jpeg', 'webp') or raise ``InvalidArgument``."""
    key = fmt.lower().strip().lstrip(".")
    if key not in ENCODE_FORMATS:
        raise InvalidArgument(f"Unsupported output format {quoted(fmt)}; use one of png, jpeg, webp.")
    return "jpeg" if key == "jpg" else key


def _check_array(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidArgument(f"Expected an (H, W, 3) image array, got shape {image.shape}.")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            # Float images are taken as [0, 1].
            image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[:, :, :3])


def encode_image(image: np.ndarray, fmt: str = "png", quality: int = 90) -> bytes:
    """Encode an (H, W, 3) uint8 (or float in [0, 1]) array as PNG, JPEG or WebP.

    ``quality`` (1..100) applies to JPEG and WebP; PNG is lossless and ignores it.
    """
    key = normalize_format(fmt)
    if not 1 <= quality <= 100:
        raise InvalidArgument(f"quality must be between 1 and 100, got {quality}.")
    arr = _check_array(image)
    buf = io.BytesIO()
    pil = Image.fromarray(arr)
    if key == "png":
        # zlib level 1: ~4x faster than the default 6 at 512 px for ~10% larger files (latency matters more)
        pil.save(buf, format="PNG", compress_level=1)
    elif key == "jpeg":
        pil.save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        pil.save(buf, format="WEBP", quality=quality, method=4)
    return buf.getvalue()


def save_image(image: np.ndarray, path: str | Path, quality: int = 90) -> Path:
    """Encode by the file extension (.png, .jpg/.jpeg, .webp) and write ``path``."""
    p = Path(path)
    suffix = p.suffix.lower().lstrip(".") or "png"
    data = encode_image(image, suffix, quality)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def resize_max_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (never upscale) so the longer side is at most ``max_side`` (Lanczos)."""
    if max_side <= 0:
        raise InvalidArgument(f"max_side must be positive, got {max_side}.")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to exactly ``width`` x ``height`` (Lanczos when shrinking, bicubic when enlarging)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    method = Image.Resampling.LANCZOS if width * height < w * h else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize((width, height), method))
