#!/usr/bin/env bash
# Range-query latency: Telltale against Prometheus 2.42 on the data `bench/metrics.sh` ingested, every
# query of ../shared/bench/queries.txt as a range query (the whole data set, 60 s step), on both
# servers in turn; reports each query's cold (first) run, its warm median, and the ratios.
#
#   bench/queries.sh OUTDIR            # OUTDIR of a finished bench/metrics.sh run; RUNS=5 REPS=30
#
# Results: OUTDIR/query-latency-keepalive.md (bench/latency.py, first and on servers that have run
# no query yet: one keep-alive connection per server, REPS runs per query, the first reported as
# cold, the median of the rest as warm) and OUTDIR/query-latency.md (promcompare.py's timings, a
# new connection per request, RUNS runs; any answer that differs from Prometheus's beyond
# bench/known-differences.txt fails the script). Both servers run and are queried alternately, so
# machine noise hits both alike; nothing else should run meanwhile. As root, the page cache is
# dropped before the servers start, so cold is cold for both.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=$(cd "${1:?usage: bench/queries.sh OUTDIR (of bench/metrics.sh)}" && pwd)
RUNS=${RUNS:-5}
PY=${PY:-$SHARED/.venv/bin/python}
BIN=${BIN:-$ROOT/target/release/telltale}
PROM_PORT=${PROM_PORT:-19090} TT_PORT=${TT_PORT:-19100}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_ready() {  # url pid
  until curl -fsS -o /dev/null "$1/api/v1/query?query=1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { echo "server exited, see $OUT/*.queries.log"; exit 1; }
    sleep 0.2
  done
}

# Cold means cold for both: with root, the page cache is dropped before the servers start.
if [ -w /proc/sys/vm/drop_caches ]; then
  sync; echo 3 >/proc/sys/vm/drop_caches; echo "page cache dropped before the servers started"
else
  echo "page cache not dropped (needs root): cold runs read data the page cache may still hold"
fi
printf 'global:\n  scrape_interval: 15s\n' >"$OUT/prometheus-queries.yml"
prometheus --config.file="$OUT/prometheus-queries.yml" --storage.tsdb.path="$OUT/prom-data" \
  --web.listen-address=127.0.0.1:$PROM_PORT >"$OUT/prometheus.queries.log" 2>&1 &
PIDS+=($!); wait_ready http://127.0.0.1:$PROM_PORT $!
"$BIN" serve --config "$OUT/telltale.yml" --listen 127.0.0.1:$TT_PORT --data-dir "$OUT/telltale-data" \
  >"$OUT/telltale.queries.log" 2>&1 &
PIDS+=($!); wait_ready http://127.0.0.1:$TT_PORT $!

# First, on servers that have answered no query yet: each query REPS times on one keep-alive
# connection per server (no TCP setup or client start-up in the timings), alternating; the first
# run of each query is reported as cold.
"$PY" "$ROOT/bench/latency.py" --a http://127.0.0.1:$PROM_PORT --b http://127.0.0.1:$TT_PORT \
  --manifest "$OUT/prometheus.manifest.json" --queries "$SHARED/queries.txt" --reps "${REPS:-30}" \
  >"$OUT/query-latency-keepalive.md"

for i in $(seq 1 "$RUNS"); do
  echo "run $i of $RUNS"
  "$PY" "$SHARED/promcompare.py" --a http://127.0.0.1:$PROM_PORT --b http://127.0.0.1:$TT_PORT \
    --name-a prometheus --name-b telltale --queries "$SHARED/queries.txt" --manifest "$OUT/prometheus.manifest.json" \
    --step 60s --mode range --quiet --json "$OUT/latency-run$i.json" | tail -1 || true  # judged just below
  "$PY" "$ROOT/bench/check_compare.py" "$OUT/latency-run$i.json"
done

"$PY" - "$OUT" "$RUNS" >"$OUT/query-latency.md" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
per = {}
for i in range(1, runs + 1):
    for r in json.load(open(f"{out}/latency-run{i}.json")):
        if "t_a" in r:
            per.setdefault(r["query"], ([], []))
            per[r["query"]][0].append(r["t_a"])
            per[r["query"]][1].append(r["t_b"])
rows, ratios = [], []
for q, (a, b) in per.items():
    ma, mb = statistics.median(a), statistics.median(b)
    ratios.append(mb / ma)
    rows.append(f"| `{q}` | {ma*1000:.1f} | {mb*1000:.1f} | {mb/ma:.2f} |")
print(f"Range queries (60 s step over the data set), median of {runs} runs each, milliseconds.\n")
print("| query | Prometheus | Telltale | Telltale / Prometheus |\n|---|---:|---:|---:|")
print("\n".join(rows))
print(f"\nMedian of the per-query ratios: {statistics.median(ratios):.2f}; worst: {max(ratios):.2f}; "
      f"queries where Telltale is slower: {sum(r > 1 for r in ratios)} of {len(ratios)}.")
EOF
cat "$OUT/query-latency.md"
echo
cat "$OUT/query-latency-keepalive.md"
