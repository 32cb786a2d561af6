#!/usr/bin/env bash
# Trace benchmark (docs/benchmarks.md, "Traces"): serve, ingest a tracebench file over OTLP/HTTP
# protobuf, check the answers, take the footprint. FILE defaults to /tmp/tb/traces.otlp (made by
# `tracebench.py gen`), with its manifest and /tmp/tb/anchors.json beside it.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${BIN:-$ROOT/target/release/telltale}")
BENCH=${BENCH:-$ROOT/../shared/bench}
PY=${PY:-/tmp/benchvenv/bin/python}
D=$(mktemp -d)
printf 'collectors:\n  enabled: false\nstorage:\n  maintenance_interval: 5s\n  traces:\n    head_max_age: 10s\ntraces:\n  grpc_listen: ""\n  collect_interval: 5s\n' > $D/c.yml
$BIN serve --config $D/c.yml --listen 127.0.0.1:17080 --data-dir $D/data > $D/log 2>&1 &
PID=$!
for i in $(seq 1 100); do curl -sf localhost:17080/-/ready >/dev/null && break; sleep 0.2; done
cd "$BENCH"
$PY tracebench.py ingest --url http://127.0.0.1:17080 --file /tmp/tb/traces.otlp --server-pid $PID --json /tmp/tb/ingest.json 2>&1 | tail -15
sleep 40
$PY tracebench.py check --url http://127.0.0.1:17080 --manifest /tmp/tb/traces.otlp.manifest.json --server-pid $PID --json /tmp/tb/check.json 2>&1 | tail -40
$PY tracebench.py footprint --pid $PID --dir $D/data --manifest /tmp/tb/traces.otlp.manifest.json --anchors /tmp/tb/anchors.json 2>&1 | tail -15
curl -s localhost:17080/metrics | grep -E "^telltale_spans|process_resident" 
ls -la $D/data/traces/segments | head
kill $PID
