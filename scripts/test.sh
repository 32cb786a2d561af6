#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with only a Rust toolchain: installs what the
# build and the tests need, then runs formatting, lints, every test, and finally the README's run
# command exactly as written. This is the command README.md names and .ci/run calls.
#
# Root: installing Debian packages needs root. Run it as root, or as a user with sudo; once every
# package below is installed, no root is needed. The disk-full tests mount small tmpfs file systems
# and so need root too (CI runs as root); without it they fail and say so.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the build needs: a C compiler and libc headers (zstd, ring and mimalloc build C code).
# What the tests start as real peers on loopback: Prometheus (remote-write sender; promtool checks
# rule files), node_exporter (reference for the host collectors), Alertmanager (amtool drives the
# silence API), aiosmtpd (receives mail), curl, headless Chromium with its WebDriver (web UI), openssl
# (the TLS tests make their certificates), tinyproxy (proxy_url), python3 (http.server redirects;
# python3-venv for the Python clients below), rsyslog and util-linux's logger (log shippers).
packages=(gcc libc6-dev pkg-config
  prometheus prometheus-node-exporter prometheus-alertmanager python3-aiosmtpd curl chromium
  chromium-driver fonts-dejavu-core openssl tinyproxy python3 python3-venv rsyslog bsdutils)
need_apt=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt)"
  SUDO=
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "error: these Debian packages are missing and installing them needs root: ${need_apt[*]}" >&2
      echo "run this script as root once, or install them with apt-get and run it again" >&2
      exit 1
    fi
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start system services on well-known ports; the tests start their own.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl stop prometheus prometheus-node-exporter prometheus-alertmanager tinyproxy rsyslog 2>/dev/null || true
  fi
fi

# Python clients the tests run (crates/telltale/tests/clients/*.py), at the exact versions of
# scripts/requirements-test.txt, in .venv-test. A venv that is broken (moved, its pip pointing at
# another checkout) or was made from another requirements file is made anew.
venv=.venv-test
req=scripts/requirements-test.txt
stamp="$venv/requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1 \
    && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; }; then
  echo "== python test clients ($req into $venv)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$req"
  "$venv/bin/python" -m pip check
  echo "$want" >"$stamp"
fi

# Node clients the trace tests run (crates/telltale/tests/clients/node), at the exact versions of
# its package-lock.json; installed again only when the lock file changed.
node_dir=crates/telltale/tests/clients/node
node_stamp="$node_dir/node_modules/.package-lock.sha256"
node_want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
  echo "== node test clients (npm ci in $node_dir)"
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
  echo "$node_want" >"$node_stamp"
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

if [ $# -gt 0 ]; then
  echo "== not running the README's run command: test filters were given ($*)"
else
  echo "== the README's run command, as written"
  ./scripts/readme-run.sh
fi
