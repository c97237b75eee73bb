"""Client calls for the fast styles: a mixin of ``service.client.AtelierClient``.

    with AtelierClient("localhost:50051") as client:
        print([(s.name, s.net) for s in client.list_styles()])        # each style with the net serving it
        client.stylize_file("photo.jpg", "starry.png", style="starry_night")
        client.stylize_file("photo.jpg", "mix.png", blend="starry_night:0.7,the_scream:0.3")
        client.stylize_file("photo.jpg", "mix.png", blend={"starry_night": 0.7, "the_scream": 0.3})
        client.stylize_file("portrait.jpg", "two.png", style="the_scream", mask="saliency",
                            background="starry_night")                # the subject in one, the rest in another
        client.stylize_file("photo.jpg", "cut.png", style="udnie", mask="mask.png")  # outside: the photo
        client.stylize_file("photo.jpg", "mine.png", style_image="my_painting.jpg")  # any painting

A blend is a ``"name:weight,..."`` (or ``name=weight``) string, a mapping or (name, weight) pairs; the
server normalises the weights and refuses bad ones (INVALID_ARGUMENT, ``AtelierClientError``). ``mask`` is
a mask image (file or bytes; white/opaque = the subject, the photo's aspect ratio) or the string
``"saliency"``. Kept apart from client.py for size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.api.v1 import atelier_pb2 as pb
from service.client_features import ImageInput
from service.client_features import image_bytes as _read

if TYPE_CHECKING:
    from service.api.v1 import atelier_pb2_grpc as pb_grpc

BlendSpec = str | Mapping[str, float] | Sequence[tuple[str, float]]
SALIENCY = "saliency"  # mask="saliency": the Grad-CAM map of the top class, computed by the server
_FORMATS = {
    "png": pb.IMAGE_FORMAT_PNG,
    "jpeg": pb.IMAGE_FORMAT_JPEG,
    "jpg": pb.IMAGE_FORMAT_JPEG,
    "webp": pb.IMAGE_FORMAT_WEBP,
}


def image_format(fmt: str) -> Any:
    try:
        return _FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise ValueError(f"unsupported output format {fmt!r}; use png, jpeg or webp") from None


def style_weights(blend: BlendSpec | None) -> list[pb.StyleWeight]:
    """A blend as ``StyleWeight`` messages; the server checks the names and weights."""
    if blend is None:
        return []
    pairs: Any
    if isinstance(blend, str):
        text = blend.strip()
        if text[:1] in ("{", "["):
            pairs = json.loads(text)
        else:
            pairs = []
            for entry in text.split(","):
                name, _, weight = entry.partition(":" if ":" in entry else "=")
                try:
                    pairs.append((name.strip(), float(weight)))
                except ValueError:
                    raise ValueError(f"a blend entry is NAME:WEIGHT, got {entry.strip()!r}") from None
        if isinstance(pairs, list) and pairs and isinstance(pairs[0], Mapping):
            pairs = [(p.get("style", ""), p.get("weight", 0.0)) for p in pairs]
    else:
        pairs = blend
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return [pb.StyleWeight(style=str(name), weight=float(weight)) for name, weight in items]


@dataclass(frozen=True)
class Stylized:
    image: bytes
    content_type: str
    model: str
    version: str
    provider: str
    width: int
    height: int
    batch_size: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    style_cached: bool = False  # style_image calls: the painting's statistics came from the server's cache
    style: str = ""  # what painted it: the style, or a blend as "a:0.7,b:0.3"
    background: str = ""  # a masked call's outside: a style, a blend or "photo"

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_bytes(self.image)
        return p


class StyleCalls:
    """Stylize and ListStyles; ``AtelierClient`` supplies the stub and the error mapping."""

    if TYPE_CHECKING:  # provided by AtelierClient
        stub: pb_grpc.AtelierStub

        def _unary(self, method: Any, request: Any, timeout: float | None) -> Any: ...

    def stylize(
        self,
        image: ImageInput,
        style: str | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        fmt: str = "png",
        quality: int = 90,
        timeout: float | None = None,
        style_image: ImageInput | None = None,
        style_size: int | None = None,
        blend: BlendSpec | None = None,
        model: str | None = None,
        mask: ImageInput | None = None,
        background: str | None = None,
        background_blend: BlendSpec | None = None,
    ) -> Stylized:
        """Stylise ``image`` with a named ``style``, a ``blend`` or any painting ``style_image``; with a
        ``mask`` (an image, or ``"saliency"``) the style paints the subject and ``background`` (a style)
        or ``background_blend`` the rest (neither: the photo itself)."""
        if sum(x is not None for x in (style, style_image, blend)) != 1:
            raise ValueError(
                "pass exactly one of style (a name), blend (weights) and style_image (a painting)"
            )
        req = pb.StylizeRequest(
            image=_read(image),
            strength=strength,
            preserve_color=preserve_color,
            max_side=max_side or 0,
            format=image_format(fmt),
            quality=quality,
            style_size=style_size or 0,
            blend=style_weights(blend),
            model=model or "",
            background=background or "",
            background_blend=style_weights(background_blend),
        )
        if isinstance(mask, str) and mask == SALIENCY:
            req.mask_saliency = True
        elif mask is not None:
            req.mask = _read(mask)
        if style_image is not None:
            req.style_image = _read(style_image)
        elif style is not None:
            req.style = style
        r = self._unary(self.stub.Stylize, req, timeout)
        return Stylized(
            r.image,
            r.content_type,
            r.model,
            r.version,
            r.provider,
            r.width,
            r.height,
            r.batch_size,
            dict(r.timings_ms),
            r.style_cached,
            r.style,
            r.background,
        )

    def stylize_file(
        self, src: str | Path, dst: str | Path, style: str | None = None, **opts: Any
    ) -> Stylized:
        """Stylise the file ``src`` into ``dst`` (format from its suffix); ``style``, ``blend=`` or
        ``style_image=``, and the other options of ``stylize``."""
        fmt = Path(dst).suffix.lstrip(".") or "png"
        result = self.stylize(Path(src), style, fmt=fmt, **opts)
        result.save(dst)
        return result

    def list_styles(self, timeout: float | None = None) -> list[pb.StyleInfo]:
        """Every style served, each with ``net``: the model serving it (a multi-style net's styles each)."""
        return list(self._unary(self.stub.ListStyles, pb.ListStylesRequest(), timeout).styles)
