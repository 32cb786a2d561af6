#!/usr/bin/env bash
# Metrics benchmark: Telltale against Prometheus 2.42 and VictoriaMetrics 1.79 on the same data
# in the same run, with ../shared/bench (its README explains every figure), then restart-to-ready
# times of all three on the data they ingested.
#
#   bench/metrics.sh [OUTDIR]            # SERIES=100000 RANGE=1h by default, as the issue asks
#
# Needs: ../shared/bench/setup.sh done once (apt peers + Python venv) and a release build
# (this script runs `cargo build --release` first). Results: OUTDIR/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=${1:-$(mktemp -d /tmp/telltale-bench.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-$SHARED/.venv/bin/python}
[ -x "$PY" ] || { echo "run $SHARED/setup.sh first (needs root), or set PY to a python with numpy and cramjam"; exit 1; }

(cd "$ROOT" && cargo build --release --quiet -p telltale)
BIN=$ROOT/target/release/telltale

# Telltale's self-scrape would add telltale_* series the harness's landing check does not expect.
printf 'server:\n  self_scrape_interval: 0s\n' >"$OUT/telltale.yml"
export CAND_NAME=telltale CAND_PORT=${CAND_PORT:-19100}
export CAND_CMD="$BIN serve --config $OUT/telltale.yml --listen 127.0.0.1:\$PORT --data-dir \$DATA"
export PY
"$SHARED/run_baseline.sh" "$OUT"

# Restart to ready: each server on the data dir it just ingested, three times, median.
ready_time() {  # name url cmd...
  local name=$1 url=$2; shift 2
  local times=()
  for i in 1 2 3; do
    local t0; t0=$(date +%s.%N)
    "$@" >>"$OUT/$name.restart.log" 2>&1 &
    local pid=$!
    until curl -fsS -o /dev/null "$url/api/v1/query?query=1" 2>/dev/null; do
      kill -0 $pid 2>/dev/null || { echo "$name exited during restart"; return 1; }
      sleep 0.05
    done
    times+=("$(echo "$(date +%s.%N) - $t0" | bc)")
    kill $pid; wait $pid 2>/dev/null || true
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p | xargs printf "%s restart-to-ready median of 3: %.2f s\n" "$name" | tee -a "$OUT/restart.txt"
}
: >"$OUT/restart.txt"
printf 'global:\n  scrape_interval: 15s\n' >"$OUT/prometheus-restart.yml"
ready_time prometheus http://127.0.0.1:19090 prometheus --config.file="$OUT/prometheus-restart.yml" \
  --storage.tsdb.path="$OUT/prom-data" --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver
ready_time victoriametrics http://127.0.0.1:18428 victoria-metrics -storageDataPath="$OUT/vm-data" \
  -httpListenAddr=127.0.0.1:18428
ready_time telltale "http://127.0.0.1:$CAND_PORT" "$BIN" serve --config "$OUT/telltale.yml" --listen "127.0.0.1:$CAND_PORT" \
  --data-dir "$OUT/telltale-data"

"$PY" "$SHARED/summarize.py" "$OUT" >"$OUT/summary.md" 2>/dev/null || true
cat "$OUT/restart.txt" >>"$OUT/summary.md"
echo "results: $OUT/summary.md"
