# Shared by the load scripts (run.sh, agents.sh, profile.sh, reload.sh): sourced, not run.
# Tools, process clean-up, readiness waits, CPU ticks, wrk's units, and the fixed-response
# origin's nginx configuration.

# Installs what is missing from Debian's packages: nginx, wrk, curl, taskset, and the extra
# `command:package` pairs given.
need() {
    local missing=() pair
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    for pair in wrk:wrk curl:curl taskset:util-linux "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} from Debian's packages"
        apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
            { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
    fi
}

# Every process started is added to PIDS and killed on exit.
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Waits up to WAIT_TRIES x 0.1 s (100 unless set) for a 2xx from `url`, else exits.
wait_ok() { # url [curl args...]
    local url=$1
    shift
    for _ in $(seq 1 "${WAIT_TRIES:-100}"); do
        curl -sf -o /dev/null "$@" "$url" && return 0
        sleep 0.1
    done
    echo "not answering: $url" >&2
    exit 1
}

# CPU ticks of a list of pids (all threads): "user system".
ticks() {
    local user=0 sys=0 p u s
    for p in "$@"; do
        # Fields after the parenthesised command: utime is the 12th, stime the 13th.
        read -r u s < <(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
        user=$((user + u))
        sys=$((sys + s))
    done
    echo "$user $sys"
}

# Converts wrk's "1.23ms"/"456.00us"/"1.20s" to microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /m$/) print n * 60e6; else print n * 1e6 }'; }

# Writes $WORK/origin/nginx.conf: the origin on ORIGIN_PORT serving the 1 KiB page
# ($WORK/page.json) at PAGE_PATH and TOKEN from any Entra token endpoint, plus the `location`
# blocks read from standard input. $1 is the file's first comment line.
origin_conf() { # comment < extra locations
    local extra
    extra=$(cat)
    cat >"$WORK/origin/nginx.conf" <<EOF
# $1
user root;
worker_processes 1;
daemon off;
pid $WORK/origin/nginx.pid;
error_log $WORK/origin/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $WORK/origin/tmp;
    proxy_temp_path $WORK/origin/tmp;
    fastcgi_temp_path $WORK/origin/tmp;
    uwsgi_temp_path $WORK/origin/tmp;
    scgi_temp_path $WORK/origin/tmp;
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        location = $PAGE_PATH {
            alias $WORK/page.json;
            default_type "application/json; odata.metadata=minimal";
            add_header OData-Version 4.0;
        }
        location ~ ^/[^/]+/oauth2/v2.0/token\$ {
            default_type application/json;
            return 200 '{"token_type":"Bearer","expires_in":86399,"ext_expires_in":86399,"access_token":"$TOKEN"}';
        }
$extra
    }
}
EOF
}
