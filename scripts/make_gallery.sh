#!/usr/bin/env bash
# Renders the gallery of docs/renders.md (docs/gallery/) with the atelier CLI from the images in /work/shared/data.
# Usage: scripts/make_gallery.sh [ITEM...]   items: gatys1 gatys2 dream class invert texture filters
# (default: all); "patches" renders a top-patch grid of the training photos into /tmp (not committed: the
# crops are pieces of the photos themselves). Rendered on a quiet 2-core CPU: single-scale Gatys at 512 px
# (a coarse start saves little with these taps, see the render benchmarks in docs/renders.md), about 2 min each.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${ATELIER_DATA:-/work/shared/data}
OUT=docs/gallery
ATELIER=(.venv/bin/python -m service)
mkdir -p "$OUT"
items=("$@")
[ ${#items[@]} -eq 0 ] && items=(gatys1 gatys2 dream class invert texture filters)

for item in "${items[@]}"; do
  case "$item" in
    gatys1)
      "${ATELIER[@]}" gatys "$DATA/content/tubingen.jpg" "$DATA/styles/van_gogh_starry_night.jpg" \
        -o "$OUT/gatys_tubingen_starry_night.jpg" --size 512 --steps 300 --quality 85 ;;
    gatys2)
      "${ATELIER[@]}" gatys "$DATA/content/golden_gate.jpg" "$DATA/styles/munch_the_scream.jpg" \
        -o "$OUT/gatys_golden_gate_scream.jpg" --size 512 --steps 300 --quality 85 ;;
    dream)
      "${ATELIER[@]}" dream "$DATA/content/sailboat.jpg" -o "$OUT/dream_sailboat.jpg" \
        --size 512 --octaves 3 --steps 5 --quality 85 ;;
    class)
      "${ATELIER[@]}" visualize class goldfish -o "$OUT/class_goldfish.jpg" --size 224 --steps 250 \
        --quality 90 ;;
    invert)
      "${ATELIER[@]}" visualize invert "$DATA/content/golden_gate.jpg" -o "$OUT/invert_golden_gate_block7.jpg" \
        --tap block7 --size 512 --steps 200 --quality 85 ;;
    texture)
      "${ATELIER[@]}" visualize texture "$DATA/styles/van_gogh_starry_night.jpg" \
        -o "$OUT/texture_starry_night.jpg" --size 384 --steps 300 --quality 85 ;;
    filters)
      "${ATELIER[@]}" visualize filters -o "$OUT/filters_lite0_stem.png" --scale 8 ;;
    patches)
      "${ATELIER[@]}" visualize patches "$DATA/photos" --tap block5.expand --channel 7 --top-k 16 \
        --size 128 --limit 200 -o /tmp/patches_block5_expand_c7.jpg ;;
    *) echo "unknown item $item" >&2; exit 2 ;;
  esac
done
