#!/usr/bin/env bash
# The exact commands that trained the shipped default styles in models/, then exported them.
#
# Machine: a 2-core CPU shared with other jobs (no GPU was available), so the schedule is short:
# mobile nets at 160 px crops, batch 4; johnson nets at 128 px crops, batch 2. The first net of each
# architecture (Starry Night) trains from scratch; the other styles start from its weights at step 100
# (--init-from; snapshot the base run's checkpoint when it reaches step 100: the run is deterministic, so
# that snapshot equals a 100-step run) with a fresh optimiser, which converges much faster than a random
# start on a small step budget.
# The mobile base run was started with --steps 400 and stopped after its step-250 checkpoint, which is
# what ships. Every batch depends only on (seed, step) and the learning rate is constant, so the 250-step
# command below gives the same weights.
#
# Usage: scripts/train_defaults.sh PHASE   (phases below; run them in this order, in parallel where noted)
#   DATA   folder of training photos (default ../shared/data/photos; a 320 px downscaled copy is faster)
#   STYLES folder of the paintings    (default ../shared/data/styles)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/photos}
STYLES=${STYLES:-../shared/data/styles}
OUT=${OUT:-runs/defaults}
COMMON=(--data "$DATA" --out "$OUT" --threads 1 --checkpoint-every 50)
MOBILE=(--arch mobile --batch 4 --size 160 --style-size 320 --lr 2e-3 "${COMMON[@]}")
NOTE=${NOTE:-"trained on a shared 2-core CPU (AVX-512), torch 2.14.1, 1 thread per run; no GPU was available"}
JOHNSON=(--arch johnson --batch 2 --size 128 --style-size 256 --lr 1e-3 "${COMMON[@]}")

mobile() {  # NAME PAINTING STYLE_WEIGHT STEPS [INIT]
  local init=()
  [[ -n "${5:-}" ]] && init=(--init-from "$OUT/$5.ckpt")
  "$PY" -m service train --name "$1" --style-image "$STYLES/$2" --style-weight "$3" --steps "$4" \
    "${MOBILE[@]}" "${init[@]}"
}

johnson() {  # NAME PAINTING STYLE_WEIGHT STEPS [INIT]
  local init=()
  [[ -n "${5:-}" ]] && init=(--init-from "$OUT/$5.ckpt")
  "$PY" -m service train --name "$1-johnson" --style-image "$STYLES/$2" --style-weight "$3" --steps "$4" \
    "${JOHNSON[@]}" "${init[@]}"
}

export_all() {
  for s in starry_night:van_gogh_starry_night great_wave:hokusai_great_wave the_scream:munch_the_scream \
    udnie:picabia_udnie composition_vii:kandinsky_composition_vii woman_with_a_hat:matisse_woman_with_a_hat; do
    "$PY" -m service export "$OUT/${s%%:*}.ckpt" --name "${s%%:*}" --style-image "$STYLES/${s#*:}.jpg" -o models --fp16 \
      --note "$NOTE"
  done
  for s in starry_night:van_gogh_starry_night great_wave:hokusai_great_wave; do
    "$PY" -m service export "$OUT/${s%%:*}-johnson.ckpt" --name "${s%%:*}" --style-image "$STYLES/${s#*:}.jpg" \
      -o models --fp16 --note "$NOTE"
  done
  cp "$OUT"/*.loss.csv "$OUT"/*.loss.png models/
}

case "${1:-}" in
  # Phase 1, two processes in parallel: the two from-scratch nets.
  base-mobile) mobile starry_night van_gogh_starry_night.jpg 3 250 ;;
  base-johnson) johnson starry_night van_gogh_starry_night.jpg 5 300 ;;
  # Phase 2, once the base checkpoints exist (each line a separate process).
  snapshot)  # when the base runs reach step 100 (mobile) and 150 (johnson)
    cp "$OUT/starry_night.ckpt" "$OUT/starry_night.step100.ckpt"
    cp "$OUT/starry_night-johnson.ckpt" "$OUT/starry_night-johnson.step150.ckpt"
    ;;
  styles)  # the five fine-tuned mobile styles, one process each
    mobile great_wave hokusai_great_wave.jpg 2 150 starry_night.step100 &
    mobile the_scream munch_the_scream.jpg 2 150 starry_night.step100 &
    mobile udnie picabia_udnie.jpg 2 150 starry_night.step100 &
    mobile composition_vii kandinsky_composition_vii.jpg 2 150 starry_night.step100 &
    mobile woman_with_a_hat matisse_woman_with_a_hat.jpg 2 150 starry_night.step100 &
    wait
    ;;
  johnson-b) johnson great_wave hokusai_great_wave.jpg 3 120 starry_night-johnson.step150 ;;
  export) export_all ;;
  *) echo "usage: $0 base-mobile|base-johnson|snapshot|styles|johnson-b|export" >&2; exit 2 ;;
esac
