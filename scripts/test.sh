#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh machine, then runs them.
# - redis-server (Debian package) for the shared rate-limit tests, started by the tests themselves
#   on free loopback ports with persistence off.
# - the real SDKs that tests/interop.rs drives through the gateway: npm `dynamics-web-api`
#   (tests/interop/js, `npm ci` into target/interop/js) and PyPI `powerplatform-dataverse-client`
#   (tests/interop/py/requirements.txt, a venv at target/interop/venv), and PyPI `mcp`, the official
#   MCP Python SDK that tests/mcp_interop.rs drives (tests/interop/mcp/requirements.txt, a venv at
#   target/interop/mcp-venv). Each is installed only when
#   missing or when its manifest changed; a stamp file records the manifest it was installed from.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$@" > /dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq "$@" > /dev/null; fi
}

if ! command -v redis-server > /dev/null; then
  echo "== installing redis-server (Debian package)"
  apt_install redis-server
fi
# The tests start their own redis-server processes; the one the package may start is not used.

interop=target/interop
js_stamp="$interop/js/.installed-from"
if ! cmp -s tests/interop/js/package-lock.json "$js_stamp"; then
  if ! command -v npm > /dev/null; then
    echo "== installing nodejs and npm (Debian packages)"
    apt_install nodejs npm
  fi
  echo "== installing the interop JS SDK (npm ci from tests/interop/js/package-lock.json)"
  rm -rf "$interop/js"
  mkdir -p "$interop/js"
  cp tests/interop/js/package.json tests/interop/js/package-lock.json "$interop/js/"
  (cd "$interop/js" && npm ci --no-audit --no-fund --loglevel=error > /dev/null)
  cp tests/interop/js/package-lock.json "$js_stamp"
fi

py_stamp="$interop/venv/.installed-from"
if ! cmp -s tests/interop/py/requirements.txt "$py_stamp"; then
  if ! python3 -c 'import ensurepip, venv' 2> /dev/null; then
    echo "== installing python3-venv (Debian package)"
    apt_install python3-venv
  fi
  echo "== installing the interop Python SDK (venv, pip install -r tests/interop/py/requirements.txt)"
  rm -rf "$interop/venv"
  python3 -m venv "$interop/venv"
  "$interop/venv/bin/pip" install --quiet --disable-pip-version-check \
    -r tests/interop/py/requirements.txt
  cp tests/interop/py/requirements.txt "$py_stamp"
fi

mcp_stamp="$interop/mcp-venv/.installed-from"
if ! cmp -s tests/interop/mcp/requirements.txt "$mcp_stamp"; then
  if ! python3 -c 'import ensurepip, venv' 2> /dev/null; then
    echo "== installing python3-venv (Debian package)"
    apt_install python3-venv
  fi
  echo "== installing the MCP Python SDK (venv, pip install -r tests/interop/mcp/requirements.txt)"
  rm -rf "$interop/mcp-venv"
  python3 -m venv "$interop/mcp-venv"
  "$interop/mcp-venv/bin/pip" install --quiet --disable-pip-version-check \
    -r tests/interop/mcp/requirements.txt
  cp tests/interop/mcp/requirements.txt "$mcp_stamp"
fi

# --locked: the dependency versions are the ones in Cargo.lock, or the run fails.
cargo test --locked "$@"
