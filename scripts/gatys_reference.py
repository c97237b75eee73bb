#!/usr/bin/env python
"""The Gatys reference of each painting: its style distance on the photos, for the fast nets' style ratio.

The bar of the fast styles is on the ratio of a fast net's style distance to that of a Gatys render of the
same (photo, painting) pair (``atelier eval-style``: 300 L-BFGS iterations from the photo, 512 px, distances
of ``StyleDistances`` on the Lite0 taps). A Gatys reference costs about a minute of this CPU per pair and
does not depend on the fast net, so it is computed once per pair and kept in
``docs/bench/gatys_reference.json`` ({painting: {photo: distance}}, plus each painting's resampling floor).
``scripts/bench_fast_quality.py --gatys-ref`` divides by it.

    # the pairs that eval-style already measured (its per-photo table in docs/quality.md)
    .venv/bin/python scripts/gatys_reference.py --from-table docs/quality.md
    # new paintings, on the first N photos (the distance varies little between photos: see the JSON)
    .venv/bin/python scripts/gatys_reference.py --paintings van_gogh_the_night_cafe --max-photos 3
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np
import torch
from tqdm import tqdm

from service.core.backbones import get_backbone
from service.core.imageio import load_image
from service.core.stylize.evaluate import (
    EvalOptions,
    StyleDistances,
    gatys_reference,
    list_images,
    resize_long_side,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "bench" / "gatys_reference.json"
# The model names of the per-photo table in docs/quality.md -> their paintings.
TABLE_PAINTINGS = {
    "composition_vii": "kandinsky_composition_vii",
    "great_wave": "hokusai_great_wave",
    "starry_night": "van_gogh_starry_night",
    "the_scream": "munch_the_scream",
    "udnie": "picabia_udnie",
    "woman_with_a_hat": "matisse_woman_with_a_hat",
}
ROW = re.compile(r"^\| `([\w-]+)` \| ([a-z_]+) \| [\d.e-]+ \| ([\d.e-]+) \|")  # model | photo | fast | Gatys


def from_table(path: Path) -> dict[str, dict[str, float]]:
    """{painting: {photo: Gatys style distance}} from eval-style's per-photo table."""
    refs: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m and m.group(1) in TABLE_PAINTINGS:
            refs.setdefault(TABLE_PAINTINGS[m.group(1)], {})[m.group(2)] = float(m.group(3))
    return refs


def load(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from-table", type=Path, help="read eval-style's per-photo table (docs/quality.md)")
    p.add_argument("--paintings", nargs="*", default=(), help="painting file stems to compute")
    p.add_argument("--content-dir", type=Path, default=DATA / "content")
    p.add_argument("--styles-dir", type=Path, default=DATA / "styles")
    p.add_argument("--max-photos", type=int, default=None, help="only the first N photos (by name)")
    p.add_argument("--steps", type=int, default=300, help="L-BFGS iterations (default 300, as eval-style)")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "eval_cache")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load(args.out)
    if args.from_table:
        for painting, photos in from_table(args.from_table).items():
            entry = data.setdefault(painting, {})
            entry["photos"] = {**photos, **entry.get("photos", {})}
            entry["source"] = f"eval-style per-photo table ({args.from_table.name})"
    if args.paintings:
        backbone = get_backbone("efficientnet_lite0", "cpu")
        options = EvalOptions(size=args.size, gatys_steps=args.steps, cache_dir=args.cache_dir)
        chosen = list(list_images(args.content_dir).items())[: args.max_photos]
        styles = list_images(args.styles_dir)
        pairs = [(s, n, path) for s in args.paintings for n, path in chosen]
        distances: dict[str, StyleDistances] = {}
        for stem, photo, path in tqdm(pairs, desc="Gatys references", unit="pair"):
            style = load_image(styles[stem])
            if stem not in distances:
                distances[stem] = StyleDistances(backbone, style, args.size)
            content = resize_long_side(load_image(path), args.size)
            ref, _ = gatys_reference(backbone, content, style, options, f"{stem}__{photo}")
            ((taps, _),) = distances[stem](content, ref)
            entry = data.setdefault(stem, {})
            entry.setdefault("photos", {})[photo] = float(np.mean(taps))
            entry["floor"] = distances[stem].floor
            entry["source"] = f"scripts/gatys_reference.py, {args.steps} L-BFGS iterations at {args.size} px"
    for entry in data.values():
        entry["median"] = float(np.median(list(entry["photos"].values())))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for stem, entry in sorted(data.items()):
        print(f"{stem:40s} median {entry['median']:.4g} over {len(entry['photos'])} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
