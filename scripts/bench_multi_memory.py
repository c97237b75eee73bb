"""Memory of one multi-style session against the single-style sessions of the same styles (issue #19).

Each case loads a ``StyleEngine`` in a fresh Python process (``names=`` picks the models) with the warm-up
runs the server does, renders one 512 px image with every style, and reports the process's peak RSS
(``ru_maxrss``) and its RSS after the renders, less a baseline process that imports the same modules and
loads nothing. One ONNX Runtime thread, CPU provider.

    .venv/bin/python scripts/bench_multi_memory.py --multi multi \\
        --singles starry_night the_scream composition_vii woman_with_a_hat
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys
import numpy as np, onnxruntime
from service.core.stylize.engine import StyleEngine, StylizeOptions
names = json.loads(sys.argv[1]); models = sys.argv[2]
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
if names:
    engine = StyleEngine.load(models, providers=["CPUExecutionProvider"], intra_threads=1, names=names)
    assert not engine.load_errors, engine.load_errors
    image = (np.random.default_rng(0).random((384, 512, 3)) * 255).astype(np.uint8)
    styles = [s.name for s in engine.styles()]
    for name in styles:
        engine.stylize(name, image, StylizeOptions())
else:
    styles = []
print(json.dumps({"styles": styles, "rss_mb": rss_mb(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def subset(models: Path, names: list[str], folder: Path) -> Path:
    """A models folder holding only the manifest entries named ``names`` (the files linked, not copied):
    a single style's name also matches that style of a multi net, so the cases load from their own
    manifests."""
    manifest = json.loads((models / "manifest.json").read_text(encoding="utf-8"))
    manifest["models"] = [m for m in manifest["models"] if m["name"] in names]
    folder.mkdir(parents=True, exist_ok=True)
    for m in manifest["models"]:
        for key in ("file", "card", "fp16_file"):
            if m.get(key) and not (folder / m[key]).exists():
                (folder / m[key]).symlink_to((models / m[key]).resolve())
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def measure(names: list[str], models: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(names), str(models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--multi", default="multi", help="the multi-style net's model name")
    p.add_argument("--singles", nargs="+", required=True, help="the single-style models of the same styles")
    args = p.parse_args(argv)
    base = measure([], args.models)
    rows = [("baseline (imports only)", base)]
    with tempfile.TemporaryDirectory() as tmp:
        multi = subset(args.models, [args.multi], Path(tmp) / "multi")
        singles = subset(args.models, args.singles, Path(tmp) / "singles")
        rows.append((f"{args.multi} (one session)", measure([args.multi], multi)))
        rows.append((f"{len(args.singles)} single-style sessions", measure(args.singles, singles)))
    print("| process | styles | RSS after renders (MB) | over baseline | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows:
        rss, peak = float(r["rss_mb"]), float(r["peak_mb"])  # type: ignore[arg-type]
        styles = len(r["styles"])  # type: ignore[arg-type]
        print(f"| {label} | {styles} | {rss:.0f} | {rss - float(base['rss_mb']):+.0f} | {peak:.0f} |")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
