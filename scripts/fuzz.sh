#!/usr/bin/env bash
# Longer fuzzing than CI: atheris for SECONDS per harness (decoder, options), then the Hypothesis and
# schemathesis tests with ATELIER_FUZZ_SCALE (default 10) times their CI example counts, drawn at random.
#   scripts/fuzz.sh [SECONDS]        default 60; results and crash files under $FUZZ_OUT (/tmp/atelier-fuzz)
# Exit status: non-zero if any harness or test found a crash. docs/fuzzing.md says how to triage one.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
OUT=${FUZZ_OUT:-/tmp/atelier-fuzz}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1 ATELIER_FUZZ_RANDOM=1 ATELIER_FUZZ_SCALE=${ATELIER_FUZZ_SCALE:-10}
mkdir -p "$OUT"
status=0

if "$PY" -c "import atheris" 2>/dev/null; then
  for target in decoder options; do
    # A working copy of the seed corpus: libFuzzer adds what it finds there, the checkout stays clean.
    work="$OUT/corpus-$target"
    mkdir -p "$work" "$OUT/crashes-$target"
    cp -n fuzz/corpus/$target/* "$work"/ 2>/dev/null
    echo "== atheris $target for ${SECONDS_PER}s"
    "$PY" -W ignore -m fuzz.atheris_main "$target" --skip-known -max_total_time="$SECONDS_PER" -rss_limit_mb=4096 \
      -timeout=30 -artifact_prefix="$OUT/crashes-$target/" -print_final_stats=1 "$work" \
      >"$OUT/atheris-$target.log" 2>&1 || status=1
    grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs)|ERROR|Error:|Exception" \
      "$OUT/atheris-$target.log" | tail -5
    echo "   crashes: $(ls "$OUT/crashes-$target" | wc -l) (in $OUT/crashes-$target)"
  done
else
  echo "atheris is not installed: skipping the coverage-guided harnesses (pip install atheris)"
fi

echo "== Hypothesis and schemathesis, ${ATELIER_FUZZ_SCALE}x the CI examples"
"$PY" -m pytest -q -s -p no:cacheprovider --timeout=0 -rxXf \
  tests/test_fuzz_decoder.py tests/test_fuzz_options.py tests/test_fuzz_grpc.py tests/test_fuzz_rest.py \
  >"$OUT/pytest.log" 2>&1 || status=1
grep -E "^[A-Z][A-Za-z]+: \{|^(GET|POST|DELETE) |passed|failed|^FAILED|^XPASS" "$OUT/pytest.log"
echo "logs: $OUT"
exit $status
