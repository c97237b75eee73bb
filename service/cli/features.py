"""``atelier embed | neighbours | map``: feature vectors of a folder, nearest neighbours, 2-D feature maps."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.common import (
    add_backbone_arg,
    add_json_arg,
    print_json,
    print_table,
    progress_bar,
    settings_from_args,
)

if TYPE_CHECKING:
    import numpy as np

    from service.core.backbones import Backbone
    from service.core.features.embed import Embeddings
    from service.settings import Settings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="write the feature vector of every image of a folder (.npz)")
    e.add_argument("folder", type=Path, metavar="DIR")
    e.add_argument("-o", "--output", type=Path, required=True, help="output .npz (names, vectors)")
    e.add_argument("--normalize", action="store_true", help="scale every vector to unit L2 norm")
    _common(e)
    e.set_defaults(func=run_embed)

    n = sub.add_parser("neighbours", help="the k gallery images nearest to a query, with a contact sheet")
    n.add_argument("query", type=Path, metavar="QUERY", help="query image")
    n.add_argument("--gallery", type=Path, required=True, help="folder of images, or an .npz from embed")
    n.add_argument("-k", type=int, default=8, help="how many neighbours (default 8)")
    n.add_argument(
        "--index", choices=("exact", "hnsw"), default="exact", help="search method (default exact)"
    )
    n.add_argument("-o", "--output", type=Path, default=Path("neighbours.png"), help="contact sheet to write")
    add_json_arg(n, "the neighbours (name, cosine distance)")
    _common(n)
    n.set_defaults(func=run_neighbours)

    m = sub.add_parser("map", help="2-D map of a folder's features with thumbnails, coloured by class")
    m.add_argument("folder", type=Path, metavar="DIR")
    m.add_argument("--method", choices=("pca", "tsne", "umap"), default="tsne")
    m.add_argument("-o", "--output", type=Path, required=True, help="output image (.png, .jpg, .webp)")
    m.add_argument("--size", type=int, default=2000, help="side of the plot area in px (default 2000)")
    m.add_argument("--thumb", type=int, default=64, help="thumbnail side in px (default 64)")
    m.add_argument("--seed", type=int, default=0)
    _common(m)
    m.set_defaults(func=run_map)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted by name)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    add_backbone_arg(p)


def folder_files(folder: Path, limit: int | None = None) -> list[Path]:
    from service.core.errors import InvalidArgument

    if not folder.is_dir():
        raise InvalidArgument(f"Not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[:limit] if limit else files
    if not files:
        raise InvalidArgument(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}.")
    return files


def _readable(files: list[Path], settings: Settings, kept: list[Path]) -> Iterator[np.ndarray]:
    """Decoded images; an unreadable file is reported on stderr and skipped (``kept`` lists the rest)."""
    from service.core.errors import AtelierError
    from service.core.imageio import load_image

    for path in files:
        try:
            image = load_image(path, settings.image_limits())
        except AtelierError as exc:
            print(f"atelier: skipped {path.name}: {exc}", file=sys.stderr)
            continue
        kept.append(path)
        yield image


def _setup(args: argparse.Namespace) -> tuple[Settings, Backbone]:
    import torch

    from service.core.backbones import get_backbone

    settings = settings_from_args(args)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    name = args.backbone or settings.default_backbone
    return settings, get_backbone(name, settings.torch_device(), settings.backbone_weights())


def embed_folder(
    args: argparse.Namespace,
    settings: Settings,
    backbone: Backbone,
    files: list[Path],
    normalize: bool,
    top: int = 0,
) -> tuple[list[Path], Embeddings]:
    from service.core.features.embed import embed

    kept: list[Path] = []
    with progress_bar("embed", len(files)) as bar:
        result = embed(
            backbone,
            _readable(files, settings, kept),
            normalize=normalize,
            batch_size=args.batch_size,
            top=top,
            total=len(files),
            progress=bar,
        )
    return kept, result


def run_embed(args: argparse.Namespace) -> int:
    import numpy as np

    files = folder_files(args.folder, args.limit)
    settings, backbone = _setup(args)
    kept, result = embed_folder(args, settings, backbone, files, args.normalize)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.output,
        names=np.array([p.name for p in kept]),
        vectors=result.vectors,
        root=np.array(str(args.folder.resolve())),
        backbone=np.array(backbone.name),
        tap=np.array(result.tap),
        normalized=np.array(result.normalized),
    )
    print(f"{len(kept)} vectors of {result.dimension} ({backbone.name} {result.tap}) -> {args.output}")
    return 0


def _gallery(
    args: argparse.Namespace, settings: Settings, backbone: Backbone
) -> tuple[list[Path], np.ndarray]:
    import numpy as np

    from service.core.errors import InvalidArgument

    if args.gallery.suffix.lower() == ".npz":
        with np.load(args.gallery) as data:
            if str(data["backbone"]) != backbone.name:
                raise InvalidArgument(
                    f"{args.gallery} holds {data['backbone']} vectors, not {backbone.name}."
                )
            root = Path(str(data["root"]))
            return [root / str(n) for n in data["names"]], np.asarray(data["vectors"], np.float32)
    kept, result = embed_folder(args, settings, backbone, folder_files(args.gallery, args.limit), False)
    return kept, result.vectors


def run_neighbours(args: argparse.Namespace) -> int:
    from service.core.features.embed import embed
    from service.core.features.gallery import Gallery
    from service.core.features.sheet import neighbour_sheet
    from service.core.imageio import load_image, save_image

    settings, backbone = _setup(args)
    query = load_image(args.query, settings.image_limits())
    paths, vectors = _gallery(args, settings, backbone)
    gallery = Gallery(vectors.shape[1], max_items=max(1, len(paths)), method=args.index)
    gallery.add([str(p) for p in paths], vectors)
    hits = gallery.search(embed(backbone, [query]).vectors, args.k)[0]
    cells = [(load_image(h.name, settings.image_limits()), Path(h.name).name, h.distance) for h in hits]
    save_image(neighbour_sheet(query, cells, query_label=f"query: {args.query.name}"), args.output)
    if args.json:
        print_json({
            "query": str(args.query), "backbone": backbone.name, "index": args.index, "sheet": str(args.output),
            "neighbours": [{"rank": i + 1, "image": h.name, "distance": h.distance} for i, h in enumerate(hits)],
        })  # fmt: skip
        return 0
    print_table(
        ("rank", "distance", "image"), [(str(i + 1), f"{h.distance:.4f}", h.name) for i, h in enumerate(hits)]
    )
    print(f"contact sheet -> {args.output}")
    return 0


def run_map(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from service.core.features.embed import embed
    from service.core.features.feature_map import draw_feature_map
    from service.core.features.projection import project_2d
    from service.core.imageio import save_image

    files = folder_files(args.folder, args.limit)
    settings, backbone = _setup(args)
    thumbs: list[np.ndarray] = []

    def keep_thumbnail(images: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for image in images:  # keep only a thumbnail of each photo, not all of them at full size
            pil = Image.fromarray(image)
            pil.thumbnail((args.thumb, args.thumb), Image.Resampling.LANCZOS)
            thumbs.append(np.asarray(pil))
            yield image

    kept: list[Path] = []
    with progress_bar("embed", len(files)) as bar:
        result = embed(
            backbone,
            keep_thumbnail(_readable(files, settings, kept)),
            batch_size=args.batch_size,
            top=1,
            total=len(files),
            progress=bar,
        )
    coords = project_2d(result.vectors, args.method, seed=args.seed)
    labels = [p[0].label for p in result.predictions or []]
    title = f"{args.method} of {backbone.name} features, {len(kept)} images; frame: predicted class"
    canvas = draw_feature_map(thumbs, coords, labels, size=args.size, thumb=args.thumb, title=title)
    save_image(canvas, args.output)
    print(f"{len(kept)} images, {args.method} -> {args.output}")
    return 0
