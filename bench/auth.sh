#!/usr/bin/env bash
# Authentication's cost, measured with ../shared/bench on the same data in the same run:
#
#  1. metrics ingest (tsbench.py: SERIES series x RANGE over remote write, 4 connections) into a
#     fresh server with auth off and into one with auth on and an ingest token sent as
#     `Authorization: Bearer` on every request (bench/with_auth.py adds the header to the same
#     client), ROUNDS rounds of both, off first in odd rounds and on first in even ones;
#  2. log ingest (logbench.py: LINES lines over the Loki push API) the same way;
#  3. the metrics ingest with auth on again while 100 logins with wrong passwords arrive at once:
#     50 at made-up user names (answered after a real check's time, without one) and 50 at the
#     admin user (Argon2 each, until the lockout after 5 refuses the rest unchecked).
#
#   bench/auth.sh [OUTDIR]      # SERIES=100000 RANGE=1h LINES=2000000 ROUNDS=4
#
# Reported: the mean rate of each mode and its ratio, and the server's CPU per sample (or line),
# which moves less with the machine's noise than the rate does.
#
# The per-request cost of a token check is a criterion bench: cargo bench -p telltale-auth.
# Needs ../shared/bench/setup.sh once. Results: OUTDIR/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared/bench
OUT=${1:-$(mktemp -d /tmp/telltale-auth-bench.XXXXXX)}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
PY=${PY:-$SHARED/.venv/bin/python}
SERIES=${SERIES:-100000} RANGE=${RANGE:-1h} LINES=${LINES:-2000000} PORT=${PORT:-19400} ROUNDS=${ROUNDS:-4}
[ -x "$PY" ] || { echo "run $SHARED/setup.sh first (needs root), or set PY"; exit 1; }
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p telltale)
  BIN=$ROOT/target/release/telltale
fi
URL=http://127.0.0.1:$PORT
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT
printf 'admin password for the bench\n' >"$OUT/admin-password"

start() {  # mode (off|on) name: a fresh server; with auth, TOKEN holds an ingest token
  local mode=$1 name=$2 data=$OUT/$2-data
  rm -rf "$data"
  if [ "$mode" = on ]; then
    printf 'server:\n  self_scrape_interval: 0s\nauth:\n  enabled: true\n  admin:\n    password_file: %s\n' \
      "$OUT/admin-password" >"$OUT/$name.yml"
  else
    printf 'server:\n  self_scrape_interval: 0s\n' >"$OUT/$name.yml"
  fi
  "$BIN" serve --config "$OUT/$name.yml" --listen "127.0.0.1:$PORT" --data-dir "$data" >"$OUT/$name.log" 2>&1 &
  PID=$!
  until curl -s -o /dev/null "$URL/-/healthy"; do sleep 0.1; done
  until grep -q ' ready' "$OUT/$name.log"; do sleep 0.1; done
  AUTH=
  if [ "$mode" = on ]; then
    TOKEN=$("$BIN" token create --config "$OUT/$name.yml" --data-dir "$data" --service-account bench --scopes ingest,read 2>/dev/null)
    AUTH="Bearer $TOKEN"
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $AUTH" "$URL/-/ready")" = 200 ]; do sleep 0.2; done
  fi
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

client() {  # mode script args...: the harness, with the token header when auth is on
  local mode=$1; shift
  if [ "$mode" = on ]; then BENCH_AUTHORIZATION="$AUTH" "$PY" "$ROOT/bench/with_auth.py" "$@"; else "$PY" "$@"; fi
}

END=$(date +%s)
# The order alternates per round (off first, then on first), so neither mode always follows
# the other.
order() { if [ $(($1 % 2)) = 1 ]; then echo off on; else echo on off; fi; }
for round in $(seq 1 "$ROUNDS"); do
  for mode in $(order "$round"); do
    name=metrics-$mode-$round
    echo "== $name"
    start $mode $name
    client $mode "$SHARED/tsbench.py" ingest --url "$URL/api/v1/write" --series "$SERIES" --range "$RANGE" --end "$END" \
      --concurrency 4 --server-pid "$PID" --wait-quiet 60 --manifest "$OUT/$name.manifest.json" --json "$OUT/$name.json" | tail -n 4
    stop
  done
done

[ -s "$OUT/logs.txt" ] || "$PY" "$SHARED/logbench.py" gen --lines "$LINES" --out "$OUT/logs.txt" --end "$END" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  for mode in $(order "$round"); do
    name=logs-$mode-$round
    echo "== $name"
    start $mode $name
    client $mode "$SHARED/logbench.py" ingest --url "$URL" --file "$OUT/logs.txt" --api loki --server-pid "$PID" \
      --wait-quiet 60 --json "$OUT/$name.json" | tail -n 3
    stop
  done
done

echo "== metrics ingest with auth on, 100 wrong-password logins at once during it"
start on burst
(sleep 2; "$PY" - "$URL" >"$OUT/burst-logins.txt" <<'PYEOF'
import concurrent.futures, json, sys, time, urllib.error, urllib.request
url = sys.argv[1]
def attempt(i):
    # Half at made-up users, half at the admin with wrong passwords (Argon2 until the lockout).
    user = "admin" if i % 2 else f"intruder{i}"
    req = urllib.request.Request(url + "/api/v1/auth/login", data=json.dumps({"user": user, "password": f"guess {i}"}).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    t0 = time.time()
    try:
        urllib.request.urlopen(req, timeout=600)
        code = 200
    except urllib.error.HTTPError as e:
        code = e.code
    return code, time.time() - t0
with concurrent.futures.ThreadPoolExecutor(100) as ex:
    res = list(ex.map(attempt, range(100)))
codes = sorted({c for c, _ in res})
print(f"100 wrong-password logins: answers {codes}, slowest {max(t for _, t in res):.1f} s")
PYEOF
) &
LOGINS=$!
client on "$SHARED/tsbench.py" ingest --url "$URL/api/v1/write" --series "$SERIES" --range "$RANGE" --end "$END" \
  --concurrency 4 --server-pid "$PID" --manifest "$OUT/burst.manifest.json" --json "$OUT/burst.json" | tail -n 4
wait $LOGINS
cat "$OUT/burst-logins.txt"
stop

"$PY" - "$OUT" "$ROUNDS" <<'PYEOF' | tee "$OUT/summary.md"
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    d = json.load(open(f"{out}/{name}.json"))
    if d.get("errors"):
        sys.exit(f"{name}: {d['errors']} failed requests")
    return d
print("| ingest | auth off | auth on (bearer token) | on / off |\n|---|---:|---:|---:|")
for kind, key, unit, count in (("metrics", "samples_per_s", "samples", "samples_accepted"), ("logs", "lines_per_s", "lines", "lines_accepted")):
    runs = {m: [load(f"{kind}-{m}-{r}") for r in range(1, rounds + 1)] for m in ("off", "on")}
    rate = {m: statistics.mean(d[key] for d in runs[m]) for m in runs}
    cpu = {m: sum(d["server_cpu_s"] for d in runs[m]) / sum(d[count] for d in runs[m]) * 1e6 for m in runs}
    print(f"| {kind}, {unit}/s (mean of {rounds}) | {rate['off']:,.0f} | {rate['on']:,.0f} | {rate['on'] / rate['off']:.3f} |")
    print(f"| {kind}, server CPU µs per {unit[:-1]} | {cpu['off']:.3f} | {cpu['on']:.3f} | {cpu['on'] / cpu['off']:.3f} |")
on = [load(f"metrics-on-{r}")["samples_per_s"] for r in range(1, rounds + 1)]
burst = load("burst")["samples_per_s"]
print(f"\nMetrics ingest with auth on while 100 wrong-password logins arrive: {burst:,.0f} samples/s, "
      f"{burst / statistics.mean(on):.3f} of the auth-on runs without them.")
PYEOF
