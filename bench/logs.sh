#!/usr/bin/env bash
# Logs benchmark with ../shared/bench/logbench.py (its README section explains every figure):
# generate LINES realistic lines, ingest them over the Loki API and (into a second, fresh
# server) the Elasticsearch bulk API, run the search checks (needles, rare terms, levels per
# minute, SQL count), measure the physical anchors (grep -F, ripgrep, zstd) on the raw file in
# the same run, and the footprint (disk incl. index, peak RSS). Between ingest and search it
# waits for compaction to finish (it starts 3 s after the last write) and prints how long.
#
#   bench/logs.sh [OUTDIR]        # LINES=10000000 by default, as the issue asks
#
# Needs ../shared/bench/setup.sh done once (venv with numpy; ripgrep, zstd). Builds release.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=${1:-$(mktemp -d /tmp/telltale-logbench.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-$SHARED/.venv/bin/python}
LINES=${LINES:-10000000}
PORT=${PORT:-19200}
WAIT_QUIET=${WAIT_QUIET:-120}
[ -x "$PY" ] || { echo "run $SHARED/setup.sh first (needs root), or set PY"; exit 1; }

(cd "$ROOT" && cargo build --release --quiet -p telltale)
BIN=$ROOT/target/release/telltale
FILE=$OUT/logs.txt
END=${END:-$(date +%s)}
[ -s "$FILE" ] || "$PY" "$SHARED/logbench.py" gen --lines "$LINES" --out "$FILE" --end "$END" | tee "$OUT/gen.txt"
M=$FILE.manifest.json
printf 'server:\n  self_scrape_interval: 0s\n' >"$OUT/telltale.yml"

run_server() {  # name api
  local name=$1 api=$2 data=$OUT/$1-data
  rm -rf "$data"
  "$BIN" serve --config "$OUT/telltale.yml" --listen "127.0.0.1:$PORT" --data-dir "$data" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/ready"; do sleep 0.1; done
  local sel=()
  [ "$api" = es ] && sel=(--selector '{index=~".+"}')
  "$PY" "$SHARED/logbench.py" ingest --url "http://127.0.0.1:$PORT" --file "$FILE" --api "$api" \
    --server-pid $pid --wait-quiet "$WAIT_QUIET" --json "$OUT/$name.ingest.json" | tee "$OUT/$name.ingest.txt"
  curl -fsS "http://127.0.0.1:$PORT/internal/force_flush" >/dev/null
  # Compaction starts once writes have stopped for 3 s; wait until it is done (at most
  # SETTLE_MAX seconds) and say how long it took, so search and footprint see settled data.
  local t0=$SECONDS pending=
  while [ $((SECONDS - t0)) -lt "${SETTLE_MAX:-600}" ]; do
    pending=$(curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '/^telltale_logs_compaction_pending /{print $2}')
    [ "$pending" = 0 ] && break
    sleep 1
  done
  echo "compaction: ${pending:-?} segments pending $((SECONDS - t0)) s after the final flush" \
    | tee "$OUT/$name.settle.txt"
  "$PY" "$SHARED/logbench.py" search --url "http://127.0.0.1:$PORT" --manifest "$M" --server-pid $pid \
    --wait-quiet "$WAIT_QUIET" "${sel[@]}" --json "$OUT/$name.search.json" | tee "$OUT/$name.search.txt"
  "$PY" "$SHARED/logbench.py" footprint --pid $pid --dir "$data" --manifest "$M" --anchors "$OUT/anchors.json" \
    --json "$OUT/$name.footprint.json" | tee "$OUT/$name.footprint.txt"
  kill $pid; wait $pid 2>/dev/null || true
}

"$PY" "$SHARED/logbench.py" anchors --file "$FILE" --manifest "$M" --wait-quiet "$WAIT_QUIET" --json "$OUT/anchors.json" | tee "$OUT/anchors.txt"
run_server loki loki
run_server es es
echo "results in $OUT"
