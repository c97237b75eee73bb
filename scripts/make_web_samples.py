"""Write the web page's sample photos (service/server/transport/rest/static/samples/) from scikit-image.

The three photos are public domain (CC0 chelsea and coffee, NASA's astronaut); each is saved as a JPEG
with its longer side at most 512 px, so the page ships under 100 KB per sample.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "service/server/transport/rest/static/samples"
MAX_SIDE = 512
QUALITY = 85


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("chelsea", "coffee", "astronaut"):
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        path = OUT / f"{name}.jpg"
        image.save(path, "JPEG", quality=QUALITY, optimize=True, progressive=True)
        print(f"{path}: {image.width}x{image.height}, {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
