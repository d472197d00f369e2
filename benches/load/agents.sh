#!/usr/bin/env bash
# What token-authenticated agents cost under load: the gateway with run.sh's full configuration
# ("full") against the same plus `agent_auth:` and one `clients:` entry matched by the agent's app
# id ("agents"), wrk sending that agent's RS256-signed Entra-shaped token as
# `Authorization: Bearer ...` on every request (the same token each time, so after the first
# request it is validated from the cache keyed by its SHA-256).
#
#   bash benches/load/agents.sh               # defaults below; see BENCHMARKS.md
#   ROUNDS=9 DURATION=15 bash benches/load/agents.sh
#   TOKEN_BYTES=1100 bash benches/load/agents.sh  # a shorter token (the per-request cost grows
#                                                  # with its length: SHA-256, header scans)
#
# Everything stays on loopback, under target/load/agents/: the origin nginx (on the load CPU)
# serves the 1 KiB JSON page and the Dataverse token as in run.sh, and also plays the agents'
# Entra tenant: its v2.0 OpenID configuration and its JWKS as static files. The signing key is a
# fresh RSA 2048 key made with openssl on every run; the JWKS and the token are built here
# (python3's standard library for JSON and base64url, `openssl dgst -sha256 -sign` for the
# signature). Both gateways run on CPU 0, wrk on CPU 1; CPU time per request comes from
# /proc/<pid>/stat as in run.sh. The two targets alternate order from round to round.
# Before measuring, the agents gateway must answer 200 with the token and 401 without it, with a
# token whose signature is wrong, and with an expired one.
set -euo pipefail

ROUNDS=${ROUNDS:-5}           # interleaved rounds of both targets
DURATION=${DURATION:-10}      # seconds per wrk run
CONNS=${CONNS:-64}            # wrk connections (one wrk thread)
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BASE_PORT=${BASE_PORT:-28180} # origin, full gateway, its admin, agents gateway, its admin
TOKEN_BYTES=${TOKEN_BYTES:-1500} # the agent token's length (Entra app tokens: about 1.1-1.6 KB; 1057 at least here)

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/target/load/agents
ORIGIN_PORT=$BASE_PORT
FULL_PORT=$((BASE_PORT + 1))
FULL_ADMIN_PORT=$((BASE_PORT + 2))
AGENTS_PORT=$((BASE_PORT + 3))
AGENTS_ADMIN_PORT=$((BASE_PORT + 4))
PAGE_PATH=/api/data/v9.2/contacts
TICK=$(getconf CLK_TCK)

# The agents' Entra tenant (the Dataverse tenant's too), the gateway app (the v2 token's `aud` is
# its client id), and the agent (`azp`, matched by `entra: { app_id }`).
AGENT_TENANT=00000000-0000-0000-0000-0000000000aa
AUDIENCE=00000000-0000-0000-0000-0000000000cc
AGENT_APP=5a1e5000-0000-4000-8000-000000000001
AGENT_OID=5a1e5000-0000-4000-8000-0000000000b1
KID=bench-agent-key-1

source "$ROOT/benches/load/lib.sh"
need openssl:openssl
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building release"
(cd "$ROOT" && cargo build --release --quiet --bin dataverse-gateway)
GATEWAY=$ROOT/target/release/dataverse-gateway

mkdir -p "$WORK"/{origin/tmp,gw,entra}
cd "$WORK"

# ---------------------------------------------------------------- fixtures (as run.sh)
ORG=http://127.0.0.1:$ORIGIN_PORT
TOKEN=$(printf 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.%s.sig' "$(head -c 1420 /dev/zero | tr '\0' 'A')")
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

# ---------------------------------------------------------------- the agents' Entra tenant
# A fresh signing key, its JWKS, the OpenID configuration pointing at it, and the agent's tokens.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out entra/key.pem 2>/dev/null
MODULUS=$(openssl rsa -in entra/key.pem -noout -modulus | sed 's/^Modulus=//')
EXPONENT=$(openssl rsa -in entra/key.pem -noout -text 2>/dev/null | awk '/^publicExponent/ {print $2}')
python3 - "$MODULUS" "$EXPONENT" "$KID" >entra/jwks.json <<'EOF'
import base64, json, sys
def b64url(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def be(i): return i.to_bytes((i.bit_length() + 7) // 8, "big")
n, e, kid = int(sys.argv[1], 16), int(sys.argv[2]), sys.argv[3]
print(json.dumps({"keys": [{"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                            "n": b64url(be(n)), "e": b64url(be(e))}]}))
EOF
cat >entra/openid-configuration.json <<EOF
{"issuer":"$ORG/$AGENT_TENANT/v2.0","jwks_uri":"$ORG/$AGENT_TENANT/discovery/v2.0/keys","token_endpoint":"$ORG/$AGENT_TENANT/oauth2/v2.0/token","id_token_signing_alg_values_supported":["RS256"]}
EOF

# The claims of a v2 app-only Entra access token (what `jwt::check_claims` reads: tid, iss, aud,
# exp, nbf; azp for `entra: { app_id }`; plus the usual rest, padded to an Entra token's size).
claims() { # exp offset in seconds from now
    python3 - "$ORG" "$AGENT_TENANT" "$AUDIENCE" "$AGENT_APP" "$AGENT_OID" "$1" "$KID" "$TOKEN_BYTES" <<'EOF'
import base64, json, sys, time
org, tid, aud, app, oid, exp_in, kid, size = sys.argv[1:9]
now = int(time.time())
c = {"aud": aud, "iss": f"{org}/{tid}/v2.0", "iat": now - 60, "nbf": now - 60,
     "exp": now + int(exp_in), "aio": "", "azp": app, "azpacr": "1", "idtyp": "app",
     "oid": oid, "roles": ["Gateway.Sales"], "sub": oid, "tid": tid,
     "uti": "aBcDeFgHiJkLmNoPqRsTuV", "ver": "2.0"}
# Pad `aio` (in Entra's tokens an opaque value, with `rh`, `idp`, `xms_*` and the like making up
# the rest of their size) so that the whole token is about TOKEN_BYTES long (header as in
# sign(), and a 2048-bit signature: 342 base64url characters).
header = json.dumps({"typ": "JWT", "alg": "RS256", "kid": kid, "x5t": kid}, separators=(",", ":"))
fixed = len(base64.urlsafe_b64encode(header.encode()).rstrip(b"=")) + 2 + 342
payload = lambda: json.dumps(c, separators=(",", ":"))
c["aio"] = "x" * max(0, (int(size) - fixed) * 3 // 4 - len(payload()))
print(payload())
EOF
}
b64url() { python3 -c 'import base64,sys; sys.stdout.write(base64.urlsafe_b64encode(sys.stdin.buffer.read()).rstrip(b"=").decode())'; }
sign() { # claims JSON -> compact JWS, RS256 with the tenant's key
    local input
    input="$(printf '{"typ":"JWT","alg":"RS256","kid":"%s","x5t":"%s"}' "$KID" "$KID" | b64url).$(printf '%s' "$1" | b64url)"
    printf '%s.%s' "$input" "$(printf '%s' "$input" | openssl dgst -sha256 -sign entra/key.pem -binary | b64url)"
}
AGENT_TOKEN=$(sign "$(claims 31536000)") # valid for a year
EXPIRED_TOKEN=$(sign "$(claims -3600)")
printf '%s' "$AGENT_TOKEN" >entra/agent.token # for profiling by hand (a bench key's token)
# The same header and claims with one character in the middle of the signature changed.
SIG=${AGENT_TOKEN##*.}
[ "${SIG:100:1}" = A ] && swap=B || swap=A
FORGED_TOKEN=${AGENT_TOKEN%.*}.${SIG:0:100}$swap${SIG:101}

# ---------------------------------------------------------------- origin
origin_conf "The fixed-response origin (plays Dataverse, the gateway's Entra ID and the agents' Entra ID)." <<EOF
        location = /$AGENT_TENANT/v2.0/.well-known/openid-configuration {
            alias $WORK/entra/openid-configuration.json;
            default_type application/json;
            access_log $WORK/origin/entra.log;
        }
        location = /$AGENT_TENANT/discovery/v2.0/keys {
            alias $WORK/entra/jwks.json;
            default_type application/json;
            access_log $WORK/origin/entra.log;
        }
EOF

# ---------------------------------------------------------------- gateways
# run.sh's `gateway_config full` (20 allowlisted tables, sim CSDL as metadata_file, admin
# listener, audit log, limits), on this script's ports; `agents` adds agent_auth and one client.
gateway_config() { # full|agents
    local port=$FULL_PORT admin=$FULL_ADMIN_PORT
    [ "$1" = agents ] && port=$AGENTS_PORT admin=$AGENTS_ADMIN_PORT
    echo "listen: 127.0.0.1:$port"
    echo "log_format: json"
    echo "admin_listen: 127.0.0.1:$admin"
    echo "audit: { output: $WORK/gw/audit-$1.log }"
    cat <<EOF
tenants:
  bench:
    default: true
    dataverse:
      url: $ORG
      metadata_file: $ROOT/src/sim/metadata.xml
    auth:
      tenant_id: $AGENT_TENANT
      client_id: 00000000-0000-0000-0000-0000000000bb
      authority: $ORG
      client_secret: { env: BENCH_CLIENT_SECRET }
    limits:
      requests_per_second: 1000000
      burst: 1000000
      max_concurrent: 1024
EOF
    echo "    allow:"
    echo "      contacts: [GET, POST, PATCH]"
    echo "      accounts: [GET, POST, PATCH]"
    echo "      annotations: [GET]"
    echo "      leads: [GET, PATCH]"
    echo "      opportunities: [GET]"
    echo "      systemusers: [GET]"
    for i in $(seq 1 14); do echo "      new_table${i}s: [GET]"; done
    echo "    functions: [WhoAmI]"
    if [ "$1" = agents ]; then
        cat <<EOF
agent_auth:
  tenant_id: $AGENT_TENANT
  audience: $AUDIENCE
  authority: $ORG
clients:
  - name: bench-agent
    entra: { app_id: $AGENT_APP }
    tenants: [bench]
EOF
    fi
}
gateway_config full >gw/full.yaml
gateway_config agents >gw/agents.yaml
: >origin/entra.log
# The audit logs grow by about 10 MB/s under load: start each run with empty ones.
: >gw/audit-full.log
: >gw/audit-agents.log

# ---------------------------------------------------------------- processes
taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK/origin" -c "$WORK/origin/nginx.conf" -e "$WORK/origin/error.log" &
PIDS+=($!)
export BENCH_CLIENT_SECRET=bench-secret
taskset -c "$PROXY_CPU" "$GATEWAY" serve --config gw/full.yaml 2>gw/full.log &
FULL_PID=$!
PIDS+=($FULL_PID)
taskset -c "$PROXY_CPU" "$GATEWAY" serve --config gw/agents.yaml 2>gw/agents.log &
AGENTS_PID=$!
PIDS+=($AGENTS_PID)

status() { # url [curl args...] -> HTTP status
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' "$@" "$url"
}
wait_ok "http://127.0.0.1:$ORIGIN_PORT$PAGE_PATH"
wait_ok "http://127.0.0.1:$ORIGIN_PORT/$AGENT_TENANT/v2.0/.well-known/openid-configuration"
wait_ok "http://127.0.0.1:$ORIGIN_PORT/$AGENT_TENANT/discovery/v2.0/keys"
wait_ok "http://127.0.0.1:$FULL_ADMIN_PORT/readyz"
wait_ok "http://127.0.0.1:$AGENTS_ADMIN_PORT/readyz"
wait_ok "http://127.0.0.1:$FULL_PORT$PAGE_PATH"

# The agents gateway checks the token: 200 with it, 401 without, forged or expired.
AGENTS_URL="http://127.0.0.1:$AGENTS_PORT$PAGE_PATH"
check() { # what expected-status expected-text curl-args...
    local what=$1 want=$2 text=$3 got body
    shift 3
    body=$(curl -s -w '\n%{http_code}' "$@" "$AGENTS_URL")
    got=${body##*$'\n'}
    body=${body%$'\n'*}
    if [ "$got" != "$want" ] || ! grep -qF -- "$text" <<<"$body"; then
        echo "agents gateway, $what: HTTP $got, expected $want and \`$text\`" >&2
        echo "${body:0:300}" >&2
        tail -5 gw/agents.log >&2
        exit 1
    fi
    echo "  $what: $got${text:+ ($text)}"
}
echo "agent token: ${#AGENT_TOKEN} bytes, RS256, kid $KID, azp $AGENT_APP"
echo "checking the agents gateway"
check "without a token" 401 "requires a client credential"
check "with a wrong signature" 401 "signature is not valid" -H "Authorization: Bearer $FORGED_TOKEN"
check "with an expired token" 401 "has expired" -H "Authorization: Bearer $EXPIRED_TOKEN"
check "with the agent's token" 200 '"value"' -H "Authorization: Bearer $AGENT_TOKEN"
check "with the agent's token again (cached)" 200 '"value"' -H "Authorization: Bearer $AGENT_TOKEN"
if [ "$(status "http://127.0.0.1:$FULL_PORT$PAGE_PATH" -H "Authorization: Bearer $AGENT_TOKEN")" != 200 ]; then
    echo "the full gateway refuses a request with an Authorization header" >&2
    exit 1
fi


RESULTS=$WORK/results.tsv
echo -e "round\ttarget\trps\tp50_us\tp99_us\tcpu_us_per_req\tcpu_util\tuser_us\tsys_us" >"$RESULTS"

load() { # round target port pid [wrk args...]
    local round=$1 target=$2 port=$3 pid=$4
    shift 4
    local u0 s0 u1 s1 out start end
    read -r u0 s0 < <(ticks "$pid")
    start=$(date +%s%N)
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$port$PAGE_PATH")
    end=$(date +%s%N)
    read -r u1 s1 < <(ticks "$pid")
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
full() { load "$1" full "$FULL_PORT" "$FULL_PID"; }
agents() { load "$1" agents "$AGENTS_PORT" "$AGENTS_PID" -H "Authorization: Bearer $AGENT_TOKEN"; }

echo "warming up"
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$FULL_PORT$PAGE_PATH" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -H "Authorization: Bearer $AGENT_TOKEN" "$AGENTS_URL" >/dev/null
echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    # Alternate which goes first, so that a drift in the machine's load favours neither.
    if [ $((round % 2)) = 1 ]; then
        full "$round"
        agents "$round"
    else
        agents "$round"
        full "$round"
    fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The token must still be accepted from the cache, and the keys fetched once (not per request).
check "with the agent's token after the load" 200 '"value"' -H "Authorization: Bearer $AGENT_TOKEN"
KEY_FETCHES=$(grep '/discovery/v2.0/keys' origin/entra.log | grep -vc '"curl/' || true)
echo "  the agents' JWKS was fetched $KEY_FETCHES time(s)"
if [ "$KEY_FETCHES" != 1 ]; then
    echo "expected one JWKS fetch" >&2
    exit 1
fi

# ---------------------------------------------------------------- summary
python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys
from collections import defaultdict

with open(sys.argv[1]) as f:
    load = list(csv.DictReader(f, delimiter="\t"))
by = {(r["round"], r["target"]): r for r in load}
rounds = sorted({r["round"] for r in load}, key=int)

def spread(xs, fmt="{:.2f}"):
    xs = sorted(xs)
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(xs[0])}-{fmt.format(xs[-1])}]"

print("\nper target (median [min-max] over rounds)")
print(f"{'target':<10}{'req/s':>24}{'p50 us':>22}{'p99 us':>22}{'CPU us/req':>20}{'user us':>20}{'system us':>20}{'CPU util':>20}")
for t in ["full", "agents"]:
    got = [by[(r, t)] for r in rounds if (r, t) in by]
    col = lambda k, f="{:.0f}": spread([float(g[k]) for g in got], f)
    print(f"{t:<10}{col('rps'):>24}{col('p50_us'):>22}{col('p99_us'):>22}"
          f"{col('cpu_us_per_req', '{:.1f}'):>20}{col('user_us', '{:.1f}'):>20}{col('sys_us', '{:.1f}'):>20}"
          f"{col('cpu_util', '{:.2f}'):>20}")

def ratios(key):
    return [float(by[(r, "agents")][key]) / float(by[(r, "full")][key]) for r in rounds]

print("\nratios agents/full, per round then median [min-max]")
for name, xs, goal in [
    ("CPU us/request", ratios("cpu_us_per_req"), "< 1.05"),
    ("  user part", ratios("user_us"), "(info)"),
    ("  system part", ratios("sys_us"), "(info)"),
    ("requests/s", ratios("rps"), "(info)"),
    ("p50 latency", ratios("p50_us"), "(info)"),
    ("p99 latency", ratios("p99_us"), "(info)"),
]:
    print(f"{name:<18}{spread(xs):>22}   target {goal:<7}  rounds: {' '.join(f'{x:.3f}' for x in xs)}")
extra = [float(by[(r, "agents")]["cpu_us_per_req"]) - float(by[(r, "full")]["cpu_us_per_req"]) for r in rounds]
print(f"\nCPU us/request the agent token adds (agents - full): {spread(extra)}"
      f"   rounds: {' '.join(f'{x:.2f}' for x in extra)}")
EOF
echo "raw figures: $RESULTS"
