#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh machine, then runs them.
# - redis-server (Debian package) for the shared rate-limit tests, started by the tests themselves
#   on free loopback ports with persistence off.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server > /dev/null; then
  echo "== installing redis-server (Debian package)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server > /dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server > /dev/null; fi
fi
# The tests start their own redis-server processes; the one the package may start is not used.

cargo test "$@"
