#!/usr/bin/env bash
# p99 latency with and without reloads, the tenant's metadata_file a ~30 MB generated CSDL.
#
#   bash benches/load/run.sh       # once: builds, and writes the fixtures under target/load
#   bash benches/load/reload.sh
#
# The gateway (run.sh's full configuration with the large CSDL, pinned to one CPU) is loaded by
# wrk for DURATION seconds twice, in turns, ROUNDS times: once quiet, once with a SIGHUP every
# second (each reload reads and parses the whole CSDL). Knobs: ROUNDS (3), DURATION (10),
# CONNS (64), TABLES (1800: about 30 MB), BASE_PORT (28080, as run.sh), NO_BUILD (set: use the
# binaries already built).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
TABLES=${TABLES:-1800}
BASE_PORT=${BASE_PORT:-28080}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/target/load
OUT=$WORK/reload
ORIGIN_PORT=$BASE_PORT
PORT=$((BASE_PORT + 11))
PAGE_PATH=/api/data/v9.2/contacts
[ -f "$WORK/origin/nginx.conf" ] || { echo "run benches/load/run.sh once first" >&2; exit 1; }
mkdir -p "$OUT"
# Built apart, so that the gateway measured is the one shipped (see run.sh).
[ -n "${NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --release --quiet --example synthetic_csdl && cargo build --release --quiet --bin dataverse-gateway)
"$ROOT/target/release/examples/synthetic_csdl" "$TABLES" >"$OUT/metadata.xml"
echo "CSDL: $(($(stat -c %s "$OUT/metadata.xml") / 1000000)) MB, $TABLES tables"
sed -e "s/^listen: .*/listen: 127.0.0.1:$PORT/" -e '/^admin_listen/d' \
    -e "s#metadata_file: .*#metadata_file: $OUT/metadata.xml#" \
    -e "s#output: .*audit-full.log#output: $OUT/audit.log#" "$WORK/gw/full.yaml" >"$OUT/gateway.yaml"
# The audit log grows by about 10 MB/s under load: each run starts with an empty one and
# empties it at its end (left growing, runs added up to tens of GB).
: >"$OUT/audit.log"

source "$ROOT/benches/load/lib.sh"
taskset -c 1 nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" &
PIDS+=($!)
BENCH_CLIENT_SECRET=bench-secret taskset -c 0 "$ROOT/target/release/dataverse-gateway" serve \
    --config "$OUT/gateway.yaml" 2>"$OUT/gateway.log" &
GW=$!
PIDS+=($GW)
for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT$PAGE_PATH" && break
    sleep 0.2
done

p99() { # wrk output -> p99 in us
    awk '$1 == "99%" { v = $2; n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1e6 }'
}
run() {
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$PAGE_PATH"
}
echo -e "round\tquiet_p99_us\treload_p99_us\treloads"
for round in $(seq 1 "$ROUNDS"); do
    quiet=$(run | p99)
    before=$(grep -c "configuration reloaded" "$OUT/gateway.log" || true)
    (for _ in $(seq 1 "$DURATION"); do kill -HUP "$GW"; sleep 1; done) &
    hup=$!
    busy=$(run | p99)
    wait "$hup"
    sleep 2
    after=$(grep -c "configuration reloaded" "$OUT/gateway.log" || true)
    echo -e "$round\t$quiet\t$busy\t$((after - before))"
done
: >"$OUT/audit.log"
