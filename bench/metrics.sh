#!/usr/bin/env bash
# Metrics benchmark: Telltale against Prometheus 2.42 and VictoriaMetrics 1.79 on the same data
# in the same run, with ../shared/bench (its README explains every figure), then restart-to-ready
# times of all three measured alike (bench/restart.sh).
#
#   bench/metrics.sh [OUTDIR]            # SERIES=100000 RANGE=1h by default, as the issue asks
#
# Needs: ../shared/bench/setup.sh done once (apt peers + Python venv). Builds the release binary
# first, unless BIN names one. Results: OUTDIR/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=${1:-$(mktemp -d /tmp/telltale-bench.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-$SHARED/.venv/bin/python}
[ -x "$PY" ] || { echo "run $SHARED/setup.sh first (needs root), or set PY to a python with numpy and cramjam"; exit 1; }

if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p telltale)
  BIN=$ROOT/target/release/telltale
fi

# Telltale's self-scrape would add telltale_* series the harness's landing check does not expect.
printf 'server:\n  self_scrape_interval: 0s\n' >"$OUT/telltale.yml"
export CAND_NAME=telltale CAND_PORT=${CAND_PORT:-19100}
export CAND_CMD="$BIN serve --config $OUT/telltale.yml --listen 127.0.0.1:\$PORT --data-dir \$DATA"
export PY
"$SHARED/run_baseline.sh" "$OUT"
# run_baseline.sh carries on past failures (it compares peers that differ); Telltale's must not.
"$PY" "$ROOT/bench/check_run.py" "$OUT" "$CAND_PORT"
"$PY" "$ROOT/bench/check_compare.py" "$OUT/promcompare-telltale.json"

"$PY" "$SHARED/summarize.py" "$OUT" >"$OUT/summary.md"
# Restart to ready, the same way for every server (fresh data, no forced flush): bench/restart.sh.
BIN=$BIN PY=$PY END=$(date +%s) "$ROOT/bench/restart.sh" "$OUT/restart"
cat "$OUT/restart/restart.md" >>"$OUT/summary.md"
echo "results: $OUT/summary.md"
