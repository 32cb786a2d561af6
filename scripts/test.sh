#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs
# formatting, lints and every test. This is the command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Real peers the integration tests start on loopback: Prometheus (remote write sender; its
# promtool checks rule files), node_exporter (reference for the host collectors, and real host
# data for the web UI's tests), Alertmanager (its amtool drives the silence API; the UI's alerts
# page runs against it and Prometheus), aiosmtpd (receives mail), curl for quick probes,
# headless Chromium with its WebDriver for the web UI, openssl (the TLS tests make their
# certificates with it), tinyproxy (an HTTP proxy for proxy_url), python3 (its http.server is a
# redirecting web server), and the log shippers for the log tests: rsyslog (forwarding),
# util-linux's logger (bsdutils), python3-venv for the Python clients below.
for pkg in prometheus prometheus-node-exporter prometheus-alertmanager python3-aiosmtpd curl chromium chromium-driver fonts-dejavu-core openssl tinyproxy python3 rsyslog bsdutils python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start system services on well-known ports; the tests start their own.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop prometheus prometheus-node-exporter prometheus-alertmanager tinyproxy rsyslog 2>/dev/null || true
  fi
fi

# Python log clients the log tests run (crates/telltale/tests/clients/*.py), in a venv.
if [ ! -x .venv-test/bin/python ] || ! .venv-test/bin/python -c 'import elasticsearch, logging_loki, opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
  echo "== python test clients (pip, .venv-test)"
  /usr/bin/python3 -m venv .venv-test
  .venv-test/bin/pip install -q "elasticsearch>=8,<9" opentelemetry-sdk opentelemetry-exporter-otlp-proto-http python-logging-loki
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== doc tests"
cargo test --workspace --doc --quiet
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
