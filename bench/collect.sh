#!/usr/bin/env bash
# Host-collector and scrape benchmarks (docs/benchmarks.md, "Collectors and scraping"):
#
#  1. `telltale agent` collecting every INTERVAL for DURATION (shipping to a 204 sink) vs
#     Debian's node_exporter scraped every INTERVAL for DURATION by curl: CPU seconds
#     (utime+stime of the measured process only; the scraper and the sink are excluded), peak
#     RSS (VmHWM), and, since the two collect different sets of series, CPU per series collected
#     (the sink counts the samples the agent shipped; curl's output counts node_exporter's).
#  2. A 100k-series target (a static file behind python's http.server) scraped every
#     SCRAPE_INTERVAL for SCRAPES scrapes by `telltale serve` and by Prometheus 2.42: CPU
#     seconds per scraped sample of each server process.
#
#   bench/collect.sh [OUTDIR]   # INTERVAL=15s DURATION=600 SERIES=100000 SCRAPE_INTERVAL=5s SCRAPES=24
#
# BIN=path/to/telltale skips the release build (a dry run of the script with a debug build
# and short durations: BIN=target/debug/telltale INTERVAL=1 DURATION=5 SERIES=2000
# SCRAPE_INTERVAL=1 SCRAPES=3; its figures mean nothing).
#
# Loopback only; every process started here is stopped by PID at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d /tmp/telltale-collect-bench.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
INTERVAL=${INTERVAL:-15}
DURATION=${DURATION:-600}
SERIES=${SERIES:-100000}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-5}
SCRAPES=${SCRAPES:-24}
PY=${PY:-$ROOT/../shared/bench/.venv/bin/python}
[ -x "$PY" ] || { echo "run ../shared/bench/setup.sh first (its venv has cramjam), or set PY"; exit 1; }
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p telltale)
  BIN=$ROOT/target/release/telltale
fi
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
cpu_s() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
contention() { awk '{print $1}' /proc/loadavg; }

# A remote-write sink answering 204 (its cost is not measured) that counts the samples it gets
# (snappy via cramjam, from ../shared/bench's venv) into a file.
SINK_PORT=$(port)
"$PY" - "$SINK_PORT" "$OUT/sink.samples" <<'PY' &
import http.server, sys, cramjam
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7F) << s; s += 7
        if c < 0x80: return v, i
def fields(b):  # (field number, payload of length-delimited fields or None)
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        if k & 7 == 2:
            n, i = varint(b, i); yield k >> 3, b[i:i + n]; i += n
        elif k & 7 == 0: _, i = varint(b, i)
        elif k & 7 == 1: i += 8
        elif k & 7 == 5: i += 4
total = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global total
        body = bytes(cramjam.snappy.decompress_raw(self.rfile.read(int(self.headers.get("content-length", 0)))))
        total += sum(1 for f, ts in fields(body) if f == 1 for g, _ in fields(ts) if g == 2)
        open(sys.argv[2], "w").write(str(total))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
PIDS+=($!)

echo "== 1. agent vs node_exporter: every ${INTERVAL}s for ${DURATION}s (load before: $(contention))"
printf 'collectors:\n  interval: %ss\n' "$INTERVAL" >"$OUT/agent.yml"
"$BIN" agent --remote-write "http://127.0.0.1:$SINK_PORT/api/v1/write" --config "$OUT/agent.yml" \
  --data-dir "$OUT/agent-data" 2>"$OUT/agent.log" &
AGENT=$!; PIDS+=($AGENT)
NE_PORT=$(port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" 2>"$OUT/ne.log" &
NE=$!; PIDS+=($NE)
sleep 1
A0=$(cpu_s $AGENT); N0=$(cpu_s $NE); S0=$(cat "$OUT/sink.samples" 2>/dev/null || echo 0); NS=0
end=$((SECONDS + DURATION))
while [ $SECONDS -lt $end ]; do
  n=$(curl -fsS "http://127.0.0.1:$NE_PORT/metrics" | grep -vc '^#')
  NS=$((NS + n))
  sleep "$INTERVAL"
done
A1=$(cpu_s $AGENT); N1=$(cpu_s $NE); S1=$(cat "$OUT/sink.samples")
AH=$(hwm_kb $AGENT); NH=$(hwm_kb $NE)
kill $AGENT $NE; wait $AGENT $NE 2>/dev/null || true
AS=$((S1 - S0))
[ "$AS" -gt 0 ] && [ "$NS" -gt 0 ] || { echo "no samples counted (agent $AS, node_exporter $NS)"; exit 1; }
{
  echo "| process | CPU seconds | series collected (sum over rounds) | µs CPU per series collected | peak RSS (MiB) |"
  echo "|---|---|---|---|---|"
  echo "| telltale agent | $(calc "$A1 - $A0") | $AS | $(calc "($A1 - $A0) * 1000000 / $AS") | $(calc "$AH/1024") |"
  echo "| node_exporter 1.5 | $(calc "$N1 - $N0") | $NS | $(calc "($N1 - $N0) * 1000000 / $NS") | $(calc "$NH/1024") |"
  echo "(interval ${INTERVAL}s, ${DURATION}s, load average after: $(contention))"
} | tee "$OUT/agent-vs-node-exporter.md"

echo "== 2. scraping a ${SERIES}-series target every ${SCRAPE_INTERVAL}s, ${SCRAPES} scrapes"
mkdir -p "$OUT/target"
python3 - "$SERIES" "$OUT/target/metrics" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("# TYPE bench_metric gauge\n")
    for i in range(n):
        f.write(f'bench_metric{{series="{i}",shard="{i % 100}"}} {i * 0.5}\n')
PY
T_PORT=$(port)
(cd "$OUT/target" && exec python3 -m http.server "$T_PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)
sleep 1
SCFG="scrape_configs:\n  - job_name: big\n    scrape_interval: ${SCRAPE_INTERVAL}s\n    scrape_timeout: ${SCRAPE_INTERVAL}s\n    static_configs:\n      - targets: ['127.0.0.1:$T_PORT']\n"
printf "collectors:\n  enabled: false\nserver:\n  self_scrape_interval: 0s\n$SCFG" >"$OUT/telltale.yml"
printf "global:\n  scrape_interval: ${SCRAPE_INTERVAL}s\n$SCFG" >"$OUT/prometheus.yml"
TT_PORT=$(port); P_PORT=$(port)
"$BIN" serve --config "$OUT/telltale.yml" --listen "127.0.0.1:$TT_PORT" --data-dir "$OUT/tt-data" 2>"$OUT/tt.log" &
TT=$!; PIDS+=($TT)
prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/prom-data" \
  --web.listen-address="127.0.0.1:$P_PORT" 2>"$OUT/prom.log" &
PR=$!; PIDS+=($PR)
sleep $((SCRAPE_INTERVAL * 2))
T0=$(cpu_s $TT); P0=$(cpu_s $PR)
sleep $((SCRAPE_INTERVAL * SCRAPES))
T1=$(cpu_s $TT); P1=$(cpu_s $PR)
q() { curl -s "http://127.0.0.1:$1/api/v1/query?query=$2" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }
echo "telltale up=$(q $TT_PORT up) samples=$(q $TT_PORT scrape_samples_scraped); prometheus up=$(q $P_PORT up) samples=$(q $P_PORT scrape_samples_scraped)" | tee "$OUT/check.txt"
for p in $TT_PORT $P_PORT; do
  [ "$(q "$p" up)" = 1 ] || { echo "the target is not up on 127.0.0.1:$p: see $OUT/check.txt and the logs"; exit 1; }
done
TOTAL=$((SERIES * SCRAPES))
{
  echo "| server | CPU seconds for $SCRAPES scrapes | µs CPU per scraped sample | peak RSS (MiB) |"
  echo "|---|---|---|---|"
  echo "| telltale serve | $(calc "$T1 - $T0") | $(calc "($T1 - $T0) * 1000000 / $TOTAL") | $(calc "$(hwm_kb $TT)/1024") |"
  echo "| Prometheus 2.42 | $(calc "$P1 - $P0") | $(calc "($P1 - $P0) * 1000000 / $TOTAL") | $(calc "$(hwm_kb $PR)/1024") |"
  echo "(load average after: $(contention))"
} | tee "$OUT/scrape-100k.md"
echo "results in $OUT"
