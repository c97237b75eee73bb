#!/usr/bin/env bash
# Micro-batching on the CPU: two `atelier serve` processes side by side, batching off (ATELIER_BATCH_MAX_DELAY_MS=0)
# and on (5 ms, batches of up to 8), measured with deploy/loadtest.py over REST with 16 closed-loop clients at
# 256 and 512 px. Cells alternate between the two servers, round after round, so load that drifts during
# the run hits both alike. Results: docs/bench/batching_cpu.md.
#
#   scripts/bench_batching_cpu.sh [ROUNDS] [SIZES...]      e.g. scripts/bench_batching_cpu.sh 3 256 512
#
# Keep-alive is 120 s here: a client thread waits at the start line while the others warm up, and on a busy
# machine that can exceed the default 5 s, after which the server has closed its connection.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROUNDS=${1:-3}
shift || true
SIZES=("${@:-256 512}")
read -r -a SIZES <<<"${SIZES[*]}"
TMP=$(mktemp -d)
$PY - "$TMP" <<'PYEOF'
import sys
import numpy as np
from skimage import data
from service.core.imageio import encode_image
photo = np.ascontiguousarray(data.astronaut())  # 512 x 512
for side, img in ((512, photo), (256, np.ascontiguousarray(photo[::2, ::2]))):
    open(f"{sys.argv[1]}/{side}.jpg", "wb").write(encode_image(img, "jpeg", 90))
PYEOF
common=(ATELIER_HOST=127.0.0.1 ATELIER_ORT_PROVIDERS='["CPUExecutionProvider"]' ATELIER_DEVICE=cpu
        ATELIER_LOG_LEVEL=WARNING ATELIER_FAST_QUEUE_LIMIT=64 ATELIER_HTTP_KEEP_ALIVE_S=120)
env "${common[@]}" ATELIER_BATCH_MAX_DELAY_MS=0 $PY -m service serve --grpc-port 50161 --http-port 8161 >"$TMP/off.log" 2>&1 &
OFF=$!
env "${common[@]}" ATELIER_BATCH_MAX_DELAY_MS=5 ATELIER_BATCH_MAX_SIZE=8 $PY -m service serve --grpc-port 50162 --http-port 8162 >"$TMP/on.log" 2>&1 &
ON=$!
trap 'kill $OFF $ON 2>/dev/null || true; rm -rf "$TMP"' EXIT
for port in 8161 8162; do
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 1
  done
done
echo "load before: $(cat /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for size in "${SIZES[@]}"; do
    n=$([ "$size" -le 256 ] && echo 96 || echo 48)
    for which in off on; do
      port=$([ "$which" = off ] && echo 8161 || echo 8162)
      row=$($PY deploy/loadtest.py --image "$TMP/$size.jpg" --style great_wave --rest "http://127.0.0.1:$port" \
            --grpc '' --concurrency 16 --requests "$n" --warmup 1 | tail -1)
      echo "round=$round size=$size batching=$which load=$(cut -d' ' -f1 /proc/loadavg) $row"
    done
  done
done
echo "load after: $(cat /proc/loadavg)"
