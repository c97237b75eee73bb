#!/usr/bin/env bash
# Renders the README gallery (docs/gallery/) with the atelier CLI from the images in /work/shared/data.
# Usage: scripts/make_gallery.sh [ITEM...]   items: gatys1 gatys2 dream class invert texture filters patches
# (default: all). The settings are kept modest so the whole gallery renders in well under an hour on a
# 2-core CPU; raise --scale-steps / --steps for smoother results.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${ATELIER_DATA:-/work/shared/data}
OUT=docs/gallery
ATELIER=(.venv/bin/python -m service)
mkdir -p "$OUT"
items=("$@")
[ ${#items[@]} -eq 0 ] && items=(gatys1 gatys2 dream class invert texture filters patches)

for item in "${items[@]}"; do
  case "$item" in
    gatys1)
      "${ATELIER[@]}" gatys "$DATA/content/tubingen.jpg" "$DATA/styles/van_gogh_starry_night.jpg" \
        -o "$OUT/gatys_tubingen_starry_night.jpg" --scales 256,512 --scale-steps 60,20 --quality 85 ;;
    gatys2)
      "${ATELIER[@]}" gatys "$DATA/content/golden_gate.jpg" "$DATA/styles/hokusai_great_wave.jpg" \
        -o "$OUT/gatys_golden_gate_great_wave.jpg" --scales 256,512 --scale-steps 60,20 --quality 85 ;;
    dream)
      "${ATELIER[@]}" dream "$DATA/content/sailboat.jpg" -o "$OUT/dream_sailboat.jpg" \
        --size 512 --octaves 4 --steps 6 --quality 85 ;;
    class)
      "${ATELIER[@]}" visualize class goldfish -o "$OUT/class_goldfish.jpg" --size 224 --steps 100 \
        --l2-weight 1e-2 --quality 90 ;;
    invert)
      "${ATELIER[@]}" visualize invert "$DATA/content/golden_gate.jpg" -o "$OUT/invert_golden_gate_block7.jpg" \
        --tap block7 --size 256 --steps 100 --quality 90 ;;
    texture)
      "${ATELIER[@]}" visualize texture "$DATA/styles/van_gogh_starry_night.jpg" \
        -o "$OUT/texture_starry_night.jpg" --size 256 --steps 60 --quality 90 ;;
    filters)
      "${ATELIER[@]}" visualize filters -o "$OUT/filters_lite0_stem.png" --scale 8 ;;
    patches)
      "${ATELIER[@]}" visualize patches "$DATA/photos" --tap block5.expand --channel 7 --top-k 16 \
        --size 128 --limit 200 -o "$OUT/patches_block5_expand_c7.jpg" ;;
    *) echo "unknown item $item" >&2; exit 2 ;;
  esac
done
