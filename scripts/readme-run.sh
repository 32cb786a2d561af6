#!/usr/bin/env bash
# Runs the README's run command exactly as written (the first ```sh block after "Run it"), from the
# repository's root as a newcomer would, and checks what the README promises next: the server becomes
# ready on 127.0.0.1:7070, serves the web UI, and has this host's CPU series within seconds. Then it
# stops the server with SIGINT (Ctrl-C) and expects a clean exit. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=$(awk '/^Run it/ {armed=1} armed && /^```sh/ {getline; print; exit}' README.md)
[ -n "$cmd" ] || { echo "error: no \`\`\`sh block after 'Run it' in README.md" >&2; exit 1; }
url=http://127.0.0.1:7070
if (exec 3<>/dev/tcp/127.0.0.1/7070) 2>/dev/null; then
  echo "error: something already listens on 127.0.0.1:7070, the README's default port; stop it and run again" >&2
  exit 1
fi
had_data=0; [ -d telltale-data ] && had_data=1
log=$(mktemp)
echo "running: $cmd   (output in $log; the first release build takes a while)"
start=$(date +%s)
setsid bash -c "$cmd" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -INT -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ $had_data = 0 ]; then rm -rf telltale-data; fi
}
trap cleanup EXIT
fail() { echo "error: $*" >&2; tail -n 30 "$log" >&2; exit 1; }

until curl -fsS "$url/-/ready" >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || fail "'$cmd' exited before the server was ready"
  [ $(( $(date +%s) - start )) -lt 5400 ] || fail "not ready after 90 minutes"
  sleep 2
done
ready=$(date +%s)
echo "ready after $((ready - start)) s (build included)"
curl -fsS -H 'Accept: text/html' "$url/" | grep -qi '<html' || fail "GET / did not serve the web UI to a browser"
until curl -fsS "$url/api/v1/query?query=count(node_cpu_seconds_total)" | grep -q '"value"'; do
  [ $(( $(date +%s) - ready )) -lt 30 ] || fail "no node_cpu_seconds_total series 30 s after ready"
  sleep 1
done
echo "host CPU series present $(( $(date +%s) - ready )) s after ready"

trap - EXIT
kill -INT -- -"$pid"
for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$pid" 2>/dev/null && { kill -KILL -- -"$pid"; fail "the server did not stop within 30 s of SIGINT"; }
rc=0; wait "$pid" || rc=$?
if [ $had_data = 0 ]; then rm -rf telltale-data; fi
[ "$rc" = 0 ] || [ "$rc" = 130 ] || fail "'$cmd' exited with status $rc after SIGINT"
echo "the README's run command works"
