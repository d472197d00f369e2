#!/usr/bin/env bash
# Side-by-side load benchmark: direct origin vs nginx reverse proxy (without and with its access
# log: the gateway writes an audit record per request) vs a bare hyper proxy (the floor: the
# gateway's crates doing nothing but pass-through, examples/bare_proxy.rs) vs dataverse-gateway.
#
#   bash benches/load/run.sh            # defaults below; see BENCHMARKS.md
#   ROUNDS=5 DURATION=15 bash benches/load/run.sh
#
# The origin is nginx serving fixed responses (a 1 KiB JSON page, a 1 GiB file, a token), so
# that the simulator's speed is not what is measured. The proxy under test runs on CPU 0; the
# origin and the load generator (wrk, curl) on CPU 1. Everything stays on loopback, under
# target/load/ (the 1 GiB file is sparse and created once). Needs root for apt-get only when
# nginx or wrk are missing.
set -euo pipefail

ROUNDS=${ROUNDS:-5}           # interleaved rounds of every scenario
DURATION=${DURATION:-10}      # seconds per wrk run
CONNS=${CONNS:-64}            # wrk connections (one wrk thread)
STREAMS=${STREAMS:-2}         # 1 GiB downloads per proxy per round
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BASE_PORT=${BASE_PORT:-28080} # origin, nginx proxy, gateway, gateway admin, minimal gateway, bare, nginx proxy with its log

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/target/load
ORIGIN_PORT=$BASE_PORT
NGINX_PORT=$((BASE_PORT + 1))
GW_PORT=$((BASE_PORT + 2))
GW_ADMIN_PORT=$((BASE_PORT + 3))
GW_MIN_PORT=$((BASE_PORT + 4))
BARE_PORT=$((BASE_PORT + 5))
NGINX_LOG_PORT=$((BASE_PORT + 6))
PAGE_PATH=/api/data/v9.2/contacts
STREAM_PATH='/api/data/v9.2/annotations(00000000-0000-0000-0000-000000000001)/documentbody/$value'
TICK=$(getconf CLK_TCK)

source "$ROOT/benches/load/lib.sh"
need
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building release"
# Built apart: an example pulls in the dev-dependencies, whose features would be unified into
# the gateway binary too (it came out ~0.9 MB larger); the gateway measured is the one shipped.
(cd "$ROOT" && cargo build --release --quiet --example bare_proxy && cargo build --release --quiet --bin dataverse-gateway)
GATEWAY=$ROOT/target/release/dataverse-gateway
BARE=$ROOT/target/release/examples/bare_proxy

mkdir -p "$WORK"/{origin,proxy,gw}
cd "$WORK"

# ---------------------------------------------------------------- fixtures
ORG=http://127.0.0.1:$ORIGIN_PORT
TOKEN=$(printf 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.%s.sig' "$(head -c 1420 /dev/zero | tr '\0' 'A')")
[ -f big.bin ] && [ "$(stat -c %s big.bin)" = 1073741824 ] || truncate -s 1G big.bin
python3 - "$ORG" >page.json <<'EOF'
import json, sys
org = sys.argv[1]
rows, page = [], None
i = 0
while True:
    rows.append({"@odata.etag": f'W/"{1000 + i}"', "contactid": f"c0000000-0000-4000-8000-{i:012d}",
                 "fullname": f"Person {i}", "emailaddress1": f"p{i}@example.com"})
    page = {"@odata.context": f"{org}/api/data/v9.2/$metadata#contacts(fullname,emailaddress1)",
            "value": rows}
    if len(json.dumps(page, separators=(",", ":"))) > 1024 - 130:
        break
    i += 1
page["@odata.nextLink"] = f"{org}/api/data/v9.2/contacts?$skiptoken=1"
text = json.dumps(page, separators=(",", ":"))
sys.stdout.write(text + " " * max(0, 1024 - len(text)))
EOF

origin_conf "The fixed-response origin (plays Dataverse and Entra ID)." <<EOF
        location ~ /documentbody/\\\$value\$ {
            alias $WORK/big.bin;
            default_type application/octet-stream;
        }
EOF

# Both nginx proxies (without and with the access log) forward the same way.
PROXY_TO_ORIGIN='        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer '"$TOKEN"'";
            proxy_buffering off;
        }'
cat >proxy/nginx.conf <<EOF
# The alternative: nginx as a plain reverse proxy with a static bearer token.
user root;
worker_processes 1;
daemon off;
pid $WORK/proxy/nginx.pid;
error_log $WORK/proxy/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $WORK/proxy/tmp;
    proxy_temp_path $WORK/proxy/tmp;
    fastcgi_temp_path $WORK/proxy/tmp;
    uwsgi_temp_path $WORK/proxy/tmp;
    scgi_temp_path $WORK/proxy/tmp;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 128;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
$PROXY_TO_ORIGIN
    }
    server {
        listen 127.0.0.1:$NGINX_LOG_PORT;
        # Buffered, as the gateway's audit writer batches its lines (a write per request
        # would make this nginx the slower one for a reason the gateway does not share).
        access_log $WORK/proxy/access.log combined buffer=64k flush=1s;
$PROXY_TO_ORIGIN
    }
}
EOF
mkdir -p origin/tmp proxy/tmp

# The gateway: 20 allowlisted tables, sim CSDL as metadata_file (no $metadata fetch).
gateway_config() { # $1 = full|minimal
    local port=$GW_PORT
    [ "$1" = minimal ] && port=$GW_MIN_PORT
    echo "listen: 127.0.0.1:$port"
    echo "log_format: json"
    if [ "$1" = full ]; then
        echo "admin_listen: 127.0.0.1:$GW_ADMIN_PORT"
        echo "audit: { output: $WORK/gw/audit-$1.log }"
    fi
    cat <<EOF
tenants:
  bench:
    default: true
    dataverse:
      url: $ORG
      metadata_file: $ROOT/src/sim/metadata.xml
    auth:
      tenant_id: 00000000-0000-0000-0000-0000000000aa
      client_id: 00000000-0000-0000-0000-0000000000bb
      authority: $ORG
      client_secret: { env: BENCH_CLIENT_SECRET }
EOF
    if [ "$1" = full ]; then
        cat <<EOF
    limits:
      requests_per_second: 1000000
      burst: 1000000
      max_concurrent: 1024
EOF
    fi
    echo "    allow:"
    echo "      contacts: [GET, POST, PATCH]"
    echo "      accounts: [GET, POST, PATCH]"
    echo "      annotations: [GET]"
    echo "      leads: [GET, PATCH]"
    echo "      opportunities: [GET]"
    echo "      systemusers: [GET]"
    for i in $(seq 1 14); do echo "      new_table${i}s: [GET]"; done
    echo "    functions: [WhoAmI]"
}
gateway_config full >gw/full.yaml
gateway_config minimal >gw/minimal.yaml
# The audit log grows by about 10 MB/s under load: start each run with an empty one.
: >gw/audit-full.log

# ---------------------------------------------------------------- processes
taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" &
PIDS+=($!)
taskset -c "$PROXY_CPU" "$NGINX" -p "$WORK/proxy" -c "$WORK/proxy/nginx.conf" -e "$WORK/proxy/error.log" &
NGINX_MASTER=$!
PIDS+=($NGINX_MASTER)
export BENCH_CLIENT_SECRET=bench-secret
taskset -c "$PROXY_CPU" "$GATEWAY" serve --config gw/full.yaml 2>gw/full.log &
GW_PID=$!
PIDS+=($GW_PID)
taskset -c "$PROXY_CPU" "$GATEWAY" serve --config gw/minimal.yaml 2>gw/minimal.log &
GW_MIN_PID=$!
PIDS+=($GW_MIN_PID)
BARE_PROXY_TOKEN=$TOKEN taskset -c "$PROXY_CPU" "$BARE" "127.0.0.1:$BARE_PORT" "127.0.0.1:$ORIGIN_PORT" &
BARE_PID=$!
PIDS+=($BARE_PID)

wait_ok "http://127.0.0.1:$ORIGIN_PORT$PAGE_PATH"
wait_ok "http://127.0.0.1:$NGINX_PORT$PAGE_PATH"
wait_ok "http://127.0.0.1:$NGINX_LOG_PORT$PAGE_PATH"
wait_ok "http://127.0.0.1:$GW_ADMIN_PORT/readyz"
wait_ok "http://127.0.0.1:$GW_PORT$PAGE_PATH"
wait_ok "http://127.0.0.1:$GW_MIN_PORT$PAGE_PATH"
wait_ok "http://127.0.0.1:$BARE_PORT$PAGE_PATH"
NGINX_PIDS="$NGINX_MASTER $(pgrep -P "$NGINX_MASTER" | tr '\n' ' ')"

hwm_kib() { awk '/VmHWM/ {s += $2} END {print s}' $(for p in "$@"; do echo "/proc/$p/status"; done); }


RESULTS=$WORK/results.tsv
echo -e "round\ttarget\trps\tp50_us\tp99_us\tcpu_us_per_req\tcpu_util\tuser_us\tsys_us" >"$RESULTS"
STREAM_RESULTS=$WORK/stream.tsv
echo -e "round\ttarget\tmib_per_s\thwm_growth_kib\thwm_kib" >"$STREAM_RESULTS"

load() { # round target port pids...
    local round=$1 target=$2 port=$3
    shift 3
    local u0=0 s0=0 u1=0 s1=0 out start end
    [ $# -gt 0 ] && read -r u0 s0 < <(ticks "$@")
    start=$(date +%s%N)
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port$PAGE_PATH")
    end=$(date +%s%N)
    [ $# -gt 0 ] && read -r u1 s1 < <(ticks "$@")
    local requests rps p50 p99 non2xx
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    p99=$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    if [ -n "$non2xx" ]; then
        echo "$target: $non2xx non-2xx responses" >&2
        exit 1
    fi
    local cpu_us util user_us sys_us t=$((u1 - u0 + s1 - s0))
    cpu_us=$(awk -v t=$t -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    user_us=$(awk -v t=$((u1 - u0)) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    sys_us=$(awk -v t=$((s1 - s0)) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    util=$(awk -v t=$t -v hz="$TICK" -v ns=$((end - start)) 'BEGIN { printf "%.2f", t / hz / (ns / 1e9) }')
    echo -e "$round\t$target\t$rps\t$p50\t$p99\t$cpu_us\t$util\t$user_us\t$sys_us" | tee -a "$RESULTS"
}

stream() { # round target port pids...
    local round=$1 target=$2 port=$3
    shift 3
    local before after speed
    before=$(hwm_kib "$@")
    speed=$(taskset -c "$LOAD_CPU" curl -sf -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port$STREAM_PATH")
    after=$(hwm_kib "$@")
    echo -e "$round\t$target\t$(awk -v s="$speed" 'BEGIN { printf "%.1f", s / 1048576 }')\t$((after - before))\t$after" | tee -a "$STREAM_RESULTS"
}

echo "warming up"
for port in $ORIGIN_PORT $NGINX_PORT $NGINX_LOG_PORT $BARE_PORT $GW_PORT $GW_MIN_PORT; do
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port$PAGE_PATH" >/dev/null
done
echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    load "$round" direct "$ORIGIN_PORT"
    load "$round" nginx "$NGINX_PORT" $NGINX_PIDS
    : >"$WORK/proxy/access.log"
    load "$round" nginx-log "$NGINX_LOG_PORT" $NGINX_PIDS
    load "$round" bare "$BARE_PORT" "$BARE_PID"
    load "$round" gateway "$GW_PORT" "$GW_PID"
    load "$round" gateway-minimal "$GW_MIN_PORT" "$GW_MIN_PID"
    for _ in $(seq 1 "$STREAMS"); do
        stream "$round" nginx "$NGINX_PORT" $NGINX_PIDS
        stream "$round" bare "$BARE_PORT" "$BARE_PID"
        stream "$round" gateway "$GW_PORT" "$GW_PID"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- summary
python3 - "$RESULTS" "$STREAM_RESULTS" <<'EOF'
import csv, statistics, sys
from collections import defaultdict

def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))

load, stream = rows(sys.argv[1]), rows(sys.argv[2])
by = defaultdict(dict)       # (round, target) -> row
for r in load:
    by[(r["round"], r["target"])] = r
rounds = sorted({r["round"] for r in load}, key=int)

def spread(xs, fmt="{:.2f}"):
    xs = sorted(xs)
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(xs[0])}-{fmt.format(xs[-1])}]"

print("\nper target (median [min-max] over rounds)")
print(f"{'target':<16}{'req/s':>24}{'p50 us':>24}{'p99 us':>24}{'CPU us/req':>22}{'user us':>20}{'system us':>20}{'CPU util':>20}")
for t in ["direct", "nginx", "nginx-log", "bare", "gateway", "gateway-minimal"]:
    got = [by[(r, t)] for r in rounds if (r, t) in by]
    col = lambda k, f="{:.0f}": spread([float(g[k]) for g in got], f)
    print(f"{t:<16}{col('rps'):>24}{col('p50_us'):>24}{col('p99_us'):>24}"
          f"{col('cpu_us_per_req', '{:.1f}'):>22}{col('user_us', '{:.1f}'):>20}{col('sys_us', '{:.1f}'):>20}"
          f"{col('cpu_util', '{:.2f}'):>20}")

def ratios(a, b, key):
    return [float(by[(r, a)][key]) / float(by[(r, b)][key]) for r in rounds]

print("\nratios, per round then median [min-max]")
targets = [
    ("CPU us/request, gateway/nginx", ratios("gateway", "nginx", "cpu_us_per_req"), "<= 1.20"),
    ("CPU us/request, gateway/bare", ratios("gateway", "bare", "cpu_us_per_req"), "<= 1.25"),
    ("CPU us/request, gateway/nginx-log", ratios("gateway", "nginx-log", "cpu_us_per_req"), "(info: nginx writing its access log)"),
    ("CPU us/request, bare/nginx", ratios("bare", "nginx", "cpu_us_per_req"), "(info)"),
    ("  user part, gateway/nginx", ratios("gateway", "nginx", "user_us"), "(info)"),
    ("  system part, gateway/nginx", ratios("gateway", "nginx", "sys_us"), "(info)"),
    ("requests/s, gateway/nginx", ratios("gateway", "nginx", "rps"), ">= 0.90"),
    ("p50 latency, gateway/nginx", ratios("gateway", "nginx", "p50_us"), "(info)"),
    ("p99 latency, gateway/nginx", ratios("gateway", "nginx", "p99_us"), "(info)"),
    ("CPU us/request, full/minimal", ratios("gateway", "gateway-minimal", "cpu_us_per_req"), "(info)"),
]
sb = defaultdict(list)
for r in stream:
    sb[r["target"]].append(r)
sr = [float(g["mib_per_s"]) / float(n["mib_per_s"]) for g, n in zip(sb["gateway"], sb["nginx"])]
targets.append(("1 GiB stream MiB/s, gateway/nginx", sr, ">= 0.95"))
for name, xs, goal in targets:
    print(f"{name:<36}{spread(xs):>22}   target {goal}   rounds: {' '.join(f'{x:.2f}' for x in xs)}")
def own(a, b):
    return [float(by[(r, a)]["cpu_us_per_req"]) - float(by[(r, b)]["cpu_us_per_req"]) for r in rounds]
print("\nthe gateway's own work, CPU us/request above the bare proxy's (median [min-max]):")
print(f"  full    {spread(own('gateway', 'bare'))}   rounds: {' '.join(f'{x:.2f}' for x in own('gateway', 'bare'))}")
print(f"  minimal {spread(own('gateway-minimal', 'bare'))}")
print(f"  (bare above nginx: {spread(own('bare', 'nginx'))})")
for t in ["nginx", "bare", "gateway"]:
    xs = sb[t]
    print(f"1 GiB stream {t:<8} MiB/s {spread([float(x['mib_per_s']) for x in xs], '{:.0f}')}"
          f"   peak RSS growth KiB {spread([float(x['hwm_growth_kib']) for x in xs], '{:.0f}')}"
          f"   (max {max(int(x['hwm_growth_kib']) for x in xs)} KiB; VmHWM now {xs[-1]['hwm_kib']} KiB)")
EOF
echo "raw figures: $RESULTS $STREAM_RESULTS"
