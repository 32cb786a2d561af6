#!/usr/bin/env bash
# Restart to ready, measured the same way on every server: Prometheus 2.42, VictoriaMetrics 1.79
# and Telltale each ingest the same tsbench data set over remote write into a fresh data dir (no
# forced flush, no snapshot: what a server holds after a normal day), then
#
#   clean: stopped with SIGTERM (a clean shutdown) and started again, RESTARTS times;
#   crash: started, killed with SIGKILL once ready, and started again, RESTARTS times.
#
# Ready is the first 200 to an instant query of `count(up)` at the data's end that returns what the
# server answered before the restart: it answers and holds the data, whatever it does lazily.
#
#   bench/restart.sh [OUTDIR]     # SERIES=100000 RANGE=1h RESTARTS=3
#
# Needs ../shared/bench/setup.sh done once. Results: OUTDIR/restart.md (median of RESTARTS).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=${1:-$(mktemp -d /tmp/telltale-restart.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-$SHARED/.venv/bin/python}
SERIES=${SERIES:-100000} RANGE=${RANGE:-1h} RESTARTS=${RESTARTS:-3}
END=${END:-$(date +%s)}
PORT=${PORT:-19300}
[ -x "$PY" ] || { echo "run $SHARED/setup.sh first (needs root), or set PY"; exit 1; }
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p telltale)
  BIN=$ROOT/target/release/telltale
fi
printf 'server:\n  self_scrape_interval: 0s\n' >"$OUT/telltale.yml"
printf 'global:\n  scrape_interval: 15s\n' >"$OUT/prometheus.yml"
URL=http://127.0.0.1:$PORT
PID=
trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; true' EXIT

start() {  # name: starts the server on its data dir in the background, sets PID (the server's own)
  local cmd
  case $1 in
    prometheus) cmd=(prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/prometheus-data"
                  --web.listen-address=127.0.0.1:$PORT --web.enable-remote-write-receiver) ;;
    victoriametrics) cmd=(victoria-metrics -storageDataPath="$OUT/victoriametrics-data" -httpListenAddr=127.0.0.1:$PORT) ;;
    telltale) cmd=("$BIN" serve --config "$OUT/telltale.yml" --listen 127.0.0.1:$PORT --data-dir "$OUT/telltale-data") ;;
  esac
  "${cmd[@]}" >>"$OUT/$1.log" 2>&1 &
  PID=$!
}

count_up() {
  curl -fsS "$URL/api/v1/query?query=count(up)&time=$END" 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' \
    2>/dev/null || echo 0
}

ready() {  # seconds from now until the server answers with the data (fails if it exits)
  local t0 n
  t0=$(date +%s.%N)
  while :; do
    kill -0 "$PID" 2>/dev/null || { echo "server exited, see $OUT/*.log" >&2; return 1; }
    n=$(count_up)
    [ "$n" = "$HOSTS" ] && break
    sleep 0.02
  done
  echo "$(date +%s.%N) - $t0" | bc
}

stop() {  # signal: stops the server and waits for it
  kill "-$1" "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| server | restart to ready after a clean stop, s | after kill -9, s |" >"$OUT/restart.md"
echo "|---|---:|---:|" >>"$OUT/restart.md"
for name in prometheus victoriametrics telltale; do
  rm -rf "${OUT:?}/$name-data"
  start $name
  until curl -fsS -o /dev/null "$URL/api/v1/query?query=1" 2>/dev/null; do sleep 0.1; done
  echo "== $name: ingest $SERIES series x $RANGE"
  "$PY" "$SHARED/tsbench.py" ingest --url "$URL/api/v1/write" --series "$SERIES" --range "$RANGE" --end "$END" \
    --concurrency 4 --server-pid "$PID" --json "$OUT/$name.ingest.json" | tail -n 3
  # What the server holds once every write landed (VictoriaMetrics shows new data after a moment).
  HOSTS=0
  until [ "$HOSTS" != 0 ]; do sleep 1; HOSTS=$(count_up); done
  sleep 30; HOSTS=$(count_up)
  echo "count(up) at the data's end: $HOSTS"
  clean=() crash=()
  for _ in $(seq 1 "$RESTARTS"); do
    stop TERM; start $name; clean+=("$(ready)")
  done
  for _ in $(seq 1 "$RESTARTS"); do
    stop KILL; start $name; crash+=("$(ready)")
  done
  stop TERM
  echo "$name clean: ${clean[*]}  kill -9: ${crash[*]}"
  printf '| %s | %.2f | %.2f |\n' $name "$(printf '%s\n' "${clean[@]}" | median)" \
    "$(printf '%s\n' "${crash[@]}" | median)" >>"$OUT/restart.md"
done
echo "(median of $RESTARTS restarts each; $SERIES series x $RANGE, ingested without a forced flush)" >>"$OUT/restart.md"
cat "$OUT/restart.md"
