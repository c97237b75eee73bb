#!/bin/bash
# Continue a scored stage of scripts/recipe_long.py with other settings, then score it (docs/training/long_runs.md).
# Usage: scripts/continue_stage.sh NAME FROM.ckpt STYLE_WEIGHT LR LAPLACIAN CPU_BUDGET [atelier train flags...]
#   e.g. scripts/continue_stage.sh starry_night.anneal24 runs/long_lap/starry_night/stage_4800/starry_night.ckpt 24 3e-4 1.5 7200
# The run lives in runs/probe/NAME/ (git-ignored; rerun the same line to resume; scripts/checkpoints.py
# keep runs/probe/NAME carries it to the next machine); PAINTING, ARCH and DATA
# (default ../shared/data) may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
NAME=$1 FROM=$2 SW=$3 LR=$4 LAP=$5 BUDGET=$6
shift 6
DATA=${DATA:-../shared/data}
PAINTING=${PAINTING:-$DATA/styles/van_gogh_starry_night.jpg}
ARCH=${ARCH:-mobile2}
D=runs/probe/$NAME
.venv/bin/python scripts/checkpoints.py restore  # a run kept by an earlier machine
mkdir -p "$D"
[ -f "$D/$NAME.ckpt" ] || cp "$FROM" "$D/$NAME.ckpt"
.venv/bin/python -m service train --name "$NAME" --data "$DATA/photos" --batch 4 --size 256 --style-size 512 \
  --lr "$LR" --arch "$ARCH" --shift-jitter 32 --content-weight 3 --grid-weight 3 --style-weight "$SW" \
  --cpu-budget "$BUDGET" --laplacian-weight "$LAP" --style-image "$PAINTING" --steps 100000 \
  --checkpoint-every 50 --threads 1 --out "$D" --resume "$@"
.venv/bin/python scripts/score_ablation.py "$D/$NAME.ckpt" --style-image "$PAINTING" --content "$DATA/content" --out "$D"
