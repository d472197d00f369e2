#!/usr/bin/env bash
# Instructions per request, by callgrind, for the gateway (full configuration) and the bare
# proxy under the same load: figures that do not depend on how busy the machine is.
#
#   bash benches/load/run.sh            # once: builds, and writes the fixtures under target/load
#   bash benches/load/profile.sh        # then this
#
# Each proxy runs under callgrind against run.sh's origin; after a warm-up the counters are
# zeroed, wrk sends load for DURATION seconds, the counters are dumped; instructions (Ir) in
# the dump divided by the requests wrk completed is the figure. The annotated profiles are left
# in target/load/profile/ (callgrind_annotate FILE). Knobs: DURATION (10), CONNS (16),
# TARGETS ("gateway bare"), BASE_PORT (28080, as run.sh).
set -euo pipefail

DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
TARGETS=${TARGETS:-gateway bare}
BASE_PORT=${BASE_PORT:-28080}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/target/load
OUT=$WORK/profile
ORIGIN_PORT=$BASE_PORT
PORT=$((BASE_PORT + 10))
PAGE_PATH=/api/data/v9.2/contacts
[ -f "$WORK/origin/nginx.conf" ] || { echo "run benches/load/run.sh once first" >&2; exit 1; }
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
mkdir -p "$OUT"
# Built apart: an example pulls in the dev-dependencies, whose features would be unified into
# the gateway binary too (it came out ~0.9 MB larger); the gateway measured is the one shipped.
(cd "$ROOT" && cargo build --release --quiet --example bare_proxy && cargo build --release --quiet --bin dataverse-gateway)

source "$ROOT/benches/load/lib.sh"
nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" &
PIDS+=($!)

WAIT_TRIES=600 # a proxy under valgrind starts slowly

TOKEN=$(printf 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.%s.sig' "$(head -c 1420 /dev/zero | tr '\0' 'A')")
for target in $TARGETS; do
    case $target in
    gateway)
        # The full configuration of run.sh, on another port and without its admin listener.
        sed -e "s/^listen: .*/listen: 127.0.0.1:$PORT/" -e '/^admin_listen/d' \
            "$WORK/gw/full.yaml" >"$OUT/gateway.yaml"
        cmd=("$ROOT/target/release/dataverse-gateway" serve --config "$OUT/gateway.yaml")
        ;;
    bare) cmd=("$ROOT/target/release/examples/bare_proxy" "127.0.0.1:$PORT" "127.0.0.1:$ORIGIN_PORT") ;;
    *) echo "unknown target $target" >&2; exit 1 ;;
    esac
    rm -f "$OUT/$target".callgrind*
    DATAVERSE_GATEWAY_THREADS=1 BENCH_CLIENT_SECRET=bench-secret BARE_PROXY_TOKEN=$TOKEN \
        valgrind --tool=callgrind --callgrind-out-file="$OUT/$target.callgrind" \
        "${cmd[@]}" 2>"$OUT/$target.log" &
    pid=$!
    PIDS+=($pid)
    wait_ok "http://127.0.0.1:$PORT$PAGE_PATH"
    wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$PORT$PAGE_PATH" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT$PAGE_PATH")
    callgrind_control -d "$pid" >/dev/null
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    # The dump taken after the load (the last numbered file; the final one at exit is ignored).
    dump=$(ls -v "$OUT/$target".callgrind.* 2>/dev/null | grep -v '\.0$' | tail -1 || true)
    [ -n "$dump" ] || dump=$(ls -v "$OUT/$target".callgrind* | head -1)
    ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    callgrind_annotate --threshold=100 "$dump" 2>/dev/null | head -150 >"$OUT/$target.txt" || true
    printf '%-8s %8d requests  %12d Ir  %8.0f Ir/request  (%s)\n' "$target" "$requests" "$ir" \
        "$(awk -v a="$ir" -v b="$requests" 'BEGIN { print a / b }')" "$OUT/$target.txt"
done
