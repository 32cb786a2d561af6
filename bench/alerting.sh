#!/usr/bin/env bash
# Alerting benchmark: 1,000 rule groups x 10 rules over the 100k-series tsbench data set,
# evaluated every 15 s, with a webhook receiver on loopback. Reports the evaluation time
# per round, the server's CPU share, and the latency from the evaluation that fires to
# the webhook receiving it (group_wait 1 s). Then the same rules, data and route on the
# real peers: Prometheus 2.42 evaluating, Alertmanager 0.25 notifying the same receiver.
#
#   bench/alerting.sh [OUTDIR]      # SERIES=100000 RANGE=1h WINDOW=240 (seconds measured)
#
# Needs ../shared/bench/setup.sh done once (its venv runs tsbench) and builds the release
# binary itself. Results: OUTDIR/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=${1:-$(mktemp -d /tmp/telltale-alerting-bench.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-$SHARED/.venv/bin/python}
[ -x "$PY" ] || { echo "run $SHARED/setup.sh first (needs root), or set PY to a python with numpy and cramjam"; exit 1; }
SERIES=${SERIES:-100000} RANGE=${RANGE:-1h} WINDOW=${WINDOW:-240}
PORT=${PORT:-19170} HOOK=${HOOK:-19171} PROM=${PROM:-19172} AM=${AM:-19173}

(cd "$ROOT" && cargo build --release --quiet -p telltale)
BIN=$ROOT/target/release/telltale
python3 "$ROOT/bench/alerting.py" rules "$OUT/rules.yml"
: >"$OUT/hook.log"
python3 "$ROOT/bench/alerting.py" sink "$HOOK" "$OUT/hook.log" &
SINK=$!
cat >"$OUT/telltale.yml" <<YML
server:
  self_scrape_interval: 0s
rule_files: [rules.yml]
rules:
  builtin: {enabled: false}
alerting:
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 1s
    group_interval: 5s
    repeat_interval: 4h
  receivers:
    - name: hook
      webhook_configs: [{url: "http://127.0.0.1:$HOOK/"}]
YML
"$BIN" serve --config "$OUT/telltale.yml" --listen "127.0.0.1:$PORT" --data-dir "$OUT/data" 2>"$OUT/telltale.log" &
TT=$!
trap 'kill $TT $SINK 2>/dev/null || true' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$PORT/-/ready"; do sleep 0.2; done

END=$(date +%s)
"$PY" "$SHARED/tsbench.py" ingest --url "http://127.0.0.1:$PORT/api/v1/write" --series "$SERIES" --range "$RANGE" \
  --end "$END" --concurrency 4 --server-pid $TT --wait-quiet 120 >"$OUT/ingest.txt" 2>&1
cat "$OUT/ingest.txt" | tail -5

# The measured window: rules run on data that ends at $END (the [5m] and [30m] ranges still see it).
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$TT/stat"; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
: >"$OUT/hook.log"
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.before"
C0=$(cpu); B0=$(busy); T0=$(date +%s.%N)
sleep "$WINDOW"
C1=$(cpu); B1=$(busy); T1=$(date +%s.%N)
curl -fsS "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.after"
curl -fsS "http://127.0.0.1:$PORT/api/v1/rules?exclude_alerts=true" >"$OUT/rules.json"
WALL=$(echo "$T1 - $T0" | bc)
OTHER=$(echo "($B1 - $B0) / 100 - ($C1 - $C0)" | bc -l)
{
  echo "### Telltale"
  echo
  python3 "$ROOT/bench/alerting.py" report "$OUT/hook.log" "$OUT/metrics.before" "$OUT/metrics.after" "$C0" "$C1" "$WALL" 15 1
  printf -- "- other processes on the machine during the window: %.2f cores busy on average\n" "$(echo "$OTHER / $WALL" | bc -l)"
  echo
} | tee "$OUT/summary.md"
# A failed rule or a window without notifications fails the run.
if grep -q '"health":"err"' "$OUT/rules.json"; then echo "rules in error: see $OUT/rules.json"; exit 1; fi
[ -s "$OUT/hook.log" ] || { echo "the webhook received nothing from Telltale"; exit 1; }
kill $TT; wait $TT 2>/dev/null || true

# The peers: Prometheus evaluates the same rule file over the same data (remote write),
# Alertmanager routes to the same receiver with the same timers.
mkdir -p "$OUT/prom" "$OUT/am"
cp "$OUT/rules.yml" "$OUT/prom/rules.yml"
printf 'global:\n  evaluation_interval: 15s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs: [{targets: ["127.0.0.1:%s"]}]\n' "$AM" >"$OUT/prom/prometheus.yml"
cat >"$OUT/am/alertmanager.yml" <<YML
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:$HOOK/"}]
YML
prometheus-alertmanager --config.file="$OUT/am/alertmanager.yml" --storage.path="$OUT/am/data" \
  --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= 2>"$OUT/am/log" &
AMP=$!
prometheus --config.file="$OUT/prom/prometheus.yml" --storage.tsdb.path="$OUT/prom/data" \
  --web.listen-address="127.0.0.1:$PROM" --web.enable-remote-write-receiver 2>"$OUT/prom/log" &
PP=$!
trap 'kill $TT $SINK $AMP $PP 2>/dev/null || true' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$PROM/-/ready"; do sleep 0.2; done
"$PY" "$SHARED/tsbench.py" ingest --url "http://127.0.0.1:$PROM/api/v1/write" --series "$SERIES" --range "$RANGE" \
  --end "$(date +%s)" --concurrency 4 --server-pid $PP --wait-quiet 120 >"$OUT/prom/ingest.txt" 2>&1 || {
  # Prometheus answers 400 for samples older than its head window (the oldest, when the ingest
  # outlasts it); the rules read the last 30 minutes. Anything else fails the run.
  grep -q "^requests ok .*errors [0-9]* {400: [0-9]*}$" "$OUT/prom/ingest.txt" \
    || { echo "Prometheus's ingest failed:"; tail -5 "$OUT/prom/ingest.txt"; exit 1; }
  echo "(Prometheus refused some of the oldest samples as out of bounds: $(grep '^requests ok' "$OUT/prom/ingest.txt"))"
}
tail -3 "$OUT/prom/ingest.txt"
cpu2() { echo "$(awk '{print ($14 + $15) / 100}' "/proc/$PP/stat") + $(awk '{print ($14 + $15) / 100}' "/proc/$AMP/stat")" | bc -l; }
: >"$OUT/hook.log"
curl -fsS "http://127.0.0.1:$PROM/metrics" >"$OUT/prom/metrics.before"
C0=$(cpu2); B0=$(busy); T0=$(date +%s.%N)
sleep "$WINDOW"
C1=$(cpu2); B1=$(busy); T1=$(date +%s.%N)
curl -fsS "http://127.0.0.1:$PROM/metrics" >"$OUT/prom/metrics.after"
WALL=$(echo "$T1 - $T0" | bc)
OTHER=$(echo "($B1 - $B0) / 100 - ($C1 - $C0)" | bc -l)
{
  echo "### Prometheus 2.42 + Alertmanager 0.25 (CPU of both)"
  echo
  python3 "$ROOT/bench/alerting.py" report "$OUT/hook.log" "$OUT/prom/metrics.before" "$OUT/prom/metrics.after" "$C0" "$C1" "$WALL" 15 1
  printf -- "- other processes on the machine during the window: %.2f cores busy on average\n" "$(echo "$OTHER / $WALL" | bc -l)"
} | tee -a "$OUT/summary.md"
[ -s "$OUT/hook.log" ] || { echo "the webhook received nothing from Alertmanager"; exit 1; }
echo "results: $OUT/summary.md"
