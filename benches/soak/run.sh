#!/usr/bin/env bash
# Bounded soak of the gateway under hostile clients and failing dependencies.
#
#   bash benches/soak/run.sh                 # defaults; about two minutes
#   REQUESTS=200000 bash benches/soak/run.sh # a longer steady phase
#
# Builds the debug binary (no release build needed: the figures are bounds and memory growth,
# not speed), starts it in front of a small misbehaving upstream written in Python
# (benches/soak/soak.py: tokens, a JSON page, a stalled stream, a hanging token endpoint),
# runs each scenario and prints its figures. Memory is sampled from /proc/PID/status. Everything
# stays on loopback under target/soak/. Exit status 1 when a bound does not hold.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/target/soak
mkdir -p "$WORK"
echo "building (debug)"
(cd "$ROOT" && cargo build --quiet --bin dataverse-gateway)
exec python3 "$ROOT/benches/soak/soak.py" "$ROOT/target/debug/dataverse-gateway" "$WORK" "$ROOT/src/sim/metadata.xml"
