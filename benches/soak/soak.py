"""The soak driver behind benches/soak/run.sh: a misbehaving upstream, the gateway, the scenarios.

Scenarios (each prints its figures; a bound that does not hold is listed at the end, exit 1):
  stalled-bodies   30 connections each declare a 16 MiB body, send 15 MiB and stall, while
                   normal requests go on: growth vs limits.max_buffered_bytes, time to answer
  silent           200 connections that never send a byte: time until each is closed
  over-cap         more silent connections than limits.max_connections: time to refuse a new
                   one, /readyz, log lines
  stalled-stream   Dataverse stops mid-body: time until the agent's stream ends as an error
  stopped-reader   agents that ask for a 64 MiB body and never read it: time until disconnected
  token-hang       the token endpoint never answers, no valid token: time to the 503
  emfile           a second gateway with a file limit of 128 and a connection cap set above it:
                   accept fails with EMFILE; log lines, /readyz, recovery
  steady+reloads   REQUESTS normal requests on 8 keep-alive connections with SIGHUP reloads
                   every 50 ms: failures, RSS at the start and the end of the phase
"""
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

GATEWAY, WORK, CSDL = sys.argv[1], sys.argv[2], sys.argv[3]
REQUESTS = int(os.environ.get("REQUESTS", "20000"))
BASE = int(os.environ.get("BASE_PORT", "29080"))
GW, ADMIN, UP_OK, UP_HANG = BASE, BASE + 1, BASE + 2, BASE + 3
MIB = 1 << 20
BUDGET = 128 * MIB
HEAD_TIMEOUT, BODY_IDLE, UPSTREAM_IDLE, TOKEN_WAIT = 3.0, 3.0, 3.0, 2.0
MAX_CONNECTIONS = 300
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


# ------------------------------------------------------------------ the upstream
def upstream(port, hang_tokens):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1024)

    def serve(conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                if "/oauth2/v2.0/token" in path:
                    if hang_tokens:
                        time.sleep(3600)
                    body = b'{"token_type":"Bearer","expires_in":3599,"access_token":"soak-token"}'
                elif method != "GET":
                    conn.sendall(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    continue
                elif "/annotations" in path:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                                 b"content-length: 67108864\r\n\r\n")
                    block = b"x" * MIB
                    for _ in range(64):
                        conn.sendall(block)
                    continue
                elif "/accounts" in path:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n10\r\n{\"value\":[{\"a\":1\r\n")
                    time.sleep(3600)
                else:
                    body = b'{"value":[{"fullname":"Person 1"}]}'
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            conn.close()

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


# ------------------------------------------------------------------ the gateway
def config(path, gw=None, admin=None, max_connections=None):
    gw, admin = gw or GW, admin or ADMIN
    max_connections = max_connections or MAX_CONNECTIONS
    tenant = """  {name}:
    default: {default}
    dataverse:
      url: http://127.0.0.1:{port}
      metadata_file: {csdl}
    auth:
      tenant_id: 00000000-0000-0000-0000-000000000001
      client_id: 00000000-0000-0000-0000-00000000000{n}
      authority: http://127.0.0.1:{port}
      client_secret: "soak-secret"
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
      annotations: [GET]
"""
    text = f"""listen: 127.0.0.1:{gw}
admin_listen: 127.0.0.1:{admin}
log_format: text
audit:
  output: {WORK}/audit.jsonl
timeouts:
  request_head: {HEAD_TIMEOUT:g}s
  request_body_idle: {BODY_IDLE:g}s
  request_body: 30s
  upstream_body_idle: {UPSTREAM_IDLE:g}s
  response_body_idle: {UPSTREAM_IDLE:g}s
  token_wait: {TOKEN_WAIT:g}s
limits:
  max_connections: {max_connections}
  max_buffered_bytes: {BUDGET // MIB}MiB
tenants:
""" + tenant.format(name="contoso", default="true", port=UP_OK, csdl=CSDL, n=2) + tenant.format(
        name="hang", default="false", port=UP_HANG, csdl=CSDL, n=3)
    with open(path, "w") as f:
        f.write(text)


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """RSS every 50 ms while running."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)


def get(path, port=GW, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_ready():
    for _ in range(200):
        try:
            if get("/api/data/v9.2/contacts")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("the gateway did not start")


def answered(sock, limit):
    """Seconds until the peer answers or closes (None: still open after `limit`)."""
    start = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and data.rstrip().endswith(b"}"):
                break
    except socket.timeout:
        return None, data
    except OSError:
        pass
    return time.monotonic() - start, data


# ------------------------------------------------------------------ scenarios
def stalled_bodies(pid):
    base = rss(pid)
    sampler = Sampler(pid)
    results, normal = [], {"ok": 0, "all": 0}

    def one():
        s = socket.create_connection(("127.0.0.1", GW))
        s.sendall(b"POST /api/data/v9.2/contacts HTTP/1.1\r\nHost: soak\r\ncontent-type: application/json\r\n"
                  b"content-length: " + str(16 * MIB).encode() + b"\r\n\r\n")
        try:
            chunk = b" " * MIB
            for _ in range(15):
                s.sendall(chunk)
        except OSError:
            pass
        stalled_at = time.monotonic()
        took, data = answered(s, BODY_IDLE + 10)
        status = data[9:12].decode() if data.startswith(b"HTTP/1.1") else "closed"
        results.append((status, None if took is None else time.monotonic() - stalled_at))
        s.close()

    threads = [threading.Thread(target=one) for _ in range(30)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        normal["all"] += 1
        try:
            if get("/api/data/v9.2/contacts", timeout=5)[0] == 200:
                normal["ok"] += 1
        except OSError:
            pass
        time.sleep(0.1)
    sampler.stop = True
    growth = sampler.peak - base
    by_status = {}
    for status, _ in results:
        by_status[status] = by_status.get(status, 0) + 1
    slowest = max((t for _, t in results if t is not None), default=0)
    print(f"stalled-bodies: 30 x 15 of 16 MiB: answers {by_status}; slowest answer {slowest:.2f} s "
          f"after the stall (request_body_idle {BODY_IDLE:g} s)")
    print(f"  RSS {base / MIB:.0f} MiB -> peak {sampler.peak / MIB:.0f} MiB: growth {growth / MIB:.0f} MiB "
          f"= {growth / BUDGET:.2f} of the {BUDGET // MIB} MiB budget; normal requests meanwhile "
          f"{normal['ok']}/{normal['all']} ok")
    check(growth < BUDGET, "stalled-bodies: growth over the budget")
    check(all(t is not None for _, t in results), "stalled-bodies: a connection was left open")
    check(slowest < BODY_IDLE + 1.5, "stalled-bodies: an answer came later than the body timeout")
    check(normal["ok"] == normal["all"], "stalled-bodies: a normal request failed")


def silent():
    socks = [socket.create_connection(("127.0.0.1", GW)) for _ in range(200)]
    opened = time.monotonic()
    closed = []
    for s in socks:
        took, _ = answered(s, HEAD_TIMEOUT + 5)
        closed.append(None if took is None else time.monotonic() - opened)
        s.close()
    still = sum(1 for c in closed if c is None)
    last = max((c for c in closed if c is not None), default=0)
    print(f"silent: 200 connections that never send: {200 - still} closed, the last after {last:.2f} s "
          f"(request_head {HEAD_TIMEOUT:g} s)")
    check(still == 0 and last < HEAD_TIMEOUT + 1.0, "silent: not all closed within the head timeout")


def over_cap(log_path):
    lines_before = open(log_path).read().count("\n")
    socks = [socket.create_connection(("127.0.0.1", GW)) for _ in range(MAX_CONNECTIONS + 20)]
    time.sleep(0.3)
    slowest, statuses = 0.0, {}
    for _ in range(20):
        start = time.monotonic()
        try:
            status = get("/api/data/v9.2/contacts", timeout=5)[0]
        except OSError:
            status = "closed"
        slowest = max(slowest, time.monotonic() - start)
        statuses[status] = statuses.get(status, 0) + 1
    ready = get("/readyz", port=ADMIN)
    for s in socks:
        s.close()
    time.sleep(0.5)
    after = json.loads(get("/readyz", port=ADMIN)[1])["reasons"]
    cap_reason = [r for r in json.loads(ready[1])["reasons"] if "listener" in r]
    ready_after = "with" if any("listener" in r for r in after) else "without"
    log = open(log_path).read().splitlines()[lines_before:]
    print(f"over-cap: {MAX_CONNECTIONS + 20} silent connections over a cap of {MAX_CONNECTIONS}: 20 new "
          f"requests answered {statuses}, slowest in {slowest * 1000:.0f} ms; /readyz {ready[0]} "
          f"({cap_reason}), {ready_after} that reason once they closed; "
          f"{len(log)} log lines meanwhile")
    check(slowest < 1.0, "over-cap: a refused request waited")
    check(ready[0] == 503 and cap_reason and ready_after == "without", "over-cap: /readyz did not say so")
    check(len(log) <= 5, "over-cap: more than a handful of log lines")


def stalled_stream():
    ends = []

    def one():
        c = http.client.HTTPConnection("127.0.0.1", GW, timeout=UPSTREAM_IDLE + 10)
        start = time.monotonic()
        c.request("GET", "/api/data/v9.2/accounts")
        r = c.getresponse()
        try:
            r.read()
            ends.append(("complete", time.monotonic() - start))
        except (http.client.IncompleteRead, OSError):
            ends.append(("error", time.monotonic() - start))
        c.close()

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slowest = max(t for _, t in ends)
    print(f"stalled-stream: 5 streams Dataverse stopped: ended {[e for e, _ in ends]}, the last after "
          f"{slowest:.2f} s (upstream_body_idle {UPSTREAM_IDLE:g} s)")
    check(all(e == "error" for e, _ in ends) and slowest < UPSTREAM_IDLE + 1.5,
          "stalled-stream: not ended as an error within the idle timeout")


def metric(name):
    text = get("/metrics", port=ADMIN)[1].decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name))


def stopped_reader():
    name = 'dataverse_gateway_agent_connections_closed_total{reason="response_unread"}'
    before = metric(name)
    socks = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", GW))
        s.sendall(b"GET /api/data/v9.2/annotations HTTP/1.1\r\nHost: soak\r\n\r\n")
        socks.append(s)
    start = time.monotonic()
    while metric(name) - before < 10 and time.monotonic() - start < UPSTREAM_IDLE + 20:
        time.sleep(0.1)
    took = time.monotonic() - start
    closed = int(metric(name) - before)
    in_flight = metric("dataverse_gateway_in_flight_requests")
    for s in socks:
        s.close()
    print(f"stopped-reader: 10 agents that never read a 64 MiB body: {closed} disconnected within "
          f"{took:.2f} s of asking (response_body_idle {UPSTREAM_IDLE:g} s, after the socket buffers "
          f"filled); requests in flight afterwards {in_flight:.0f}")
    check(closed == 10 and took < UPSTREAM_IDLE + 5, "stopped-reader: not disconnected in time")


def token_hang():
    times = []
    for _ in range(3):
        start = time.monotonic()
        status, body = get("/hang/api/data/v9.2/contacts")
        times.append((status, time.monotonic() - start))
    print(f"token-hang: token endpoint silent since startup, no token: answers "
          f"{[(s, round(t, 2)) for s, t in times]} (token_wait {TOKEN_WAIT:g} s)")
    check(all(s == 503 and t < TOKEN_WAIT + 1 for s, t in times), "token-hang: not a fast 503")


def steady(pid):
    per = REQUESTS // 8
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    start_rss = rss(pid)
    mid_rss = []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", GW, timeout=10)
        ok = failed = 0
        for i in range(per):
            try:
                c.request("GET", "/api/data/v9.2/contacts?$select=fullname")
                r = c.getresponse()
                r.read()
                ok += r.status == 200
                failed += r.status != 200
            except (OSError, http.client.HTTPException):
                failed += 1
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", GW, timeout=10)
        with lock:
            counts["ok"] += ok
            counts["failed"] += failed

    reloads = {"n": 0, "stop": False}

    def reloader():
        while not reloads["stop"]:
            os.kill(pid, signal.SIGHUP)
            reloads["n"] += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    r = threading.Thread(target=reloader)
    r.start()
    while any(t.is_alive() for t in threads):
        mid_rss.append(rss(pid))
        time.sleep(0.5)
    reloads["stop"] = True
    r.join()
    took = time.monotonic() - started
    end_rss = rss(pid)
    quarter = mid_rss[len(mid_rss) // 4] if mid_rss else start_rss
    print(f"steady+reloads: {counts['ok'] + counts['failed']} requests in {took:.0f} s on 8 connections, "
          f"{counts['failed']} failed, {reloads['n']} SIGHUP reloads; RSS {start_rss / MIB:.1f} MiB at the "
          f"start, {quarter / MIB:.1f} MiB at a quarter, {end_rss / MIB:.1f} MiB at the end "
          f"(growth after the first quarter {(end_rss - quarter) / MIB:+.1f} MiB)")
    check(counts["failed"] == 0, "steady: requests failed")
    check(end_rss - quarter < 16 * MIB, "steady: memory grew by 16 MiB or more")


def emfile():
    gw_port, admin_port = BASE + 4, BASE + 5
    path, log_path = f"{WORK}/emfile.yaml", f"{WORK}/emfile.log"
    config(path, gw_port, admin_port, max_connections=1000)

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    with open(log_path, "w") as log:
        gw = subprocess.Popen([GATEWAY, "serve", "--config", path], stdout=subprocess.DEVNULL,
                              stderr=log, env=dict(os.environ, RUST_LOG="info"), preexec_fn=low_limit)
    try:
        for _ in range(200):
            try:
                if get("/api/data/v9.2/contacts", port=gw_port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        before = len(open(log_path).read().splitlines())
        socks = []
        for _ in range(200):
            try:
                socks.append(socket.create_connection(("127.0.0.1", gw_port), timeout=1))
            except OSError:
                break
        time.sleep(1.0)
        try:
            ready = get("/readyz", port=admin_port, timeout=2)
            reasons = [r for r in json.loads(ready[1])["reasons"] if "listener" in r]
        except OSError:
            ready, reasons = (0, b""), ["admin unreachable"]
        during = open(log_path).read().splitlines()[before:]
        for s in socks:
            s.close()
        time.sleep(HEAD_TIMEOUT + 1.5)
        status = get("/api/data/v9.2/contacts", port=gw_port)[0]
        after = open(log_path).read().splitlines()[before:]
        failing = sum("accept failing" in l for l in after)
        again = sum("accepting connections again" in l for l in after)
        print(f"emfile: file limit 128, 200 silent connections: /readyz {ready[0]} ({reasons}); "
              f"{len(during)} log lines in the second at EMFILE ({failing} 'accept failing', {again} "
              f"'accepting again' by the end); a request after they closed: {status}")
        check(ready[0] == 503 and reasons, "emfile: /readyz did not say so")
        check(len(during) <= 5, "emfile: a log storm")
        check(status == 200 and again >= 1, "emfile: did not recover")
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=40)


def main():
    upstream(UP_OK, False)
    upstream(UP_HANG, True)
    path = f"{WORK}/gateway.yaml"
    config(path)
    log_path = f"{WORK}/gateway.log"
    log = open(log_path, "w")
    env = dict(os.environ, RUST_LOG="info")
    gw = subprocess.Popen([GATEWAY, "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        wait_ready()
        for _ in range(100):
            get("/api/data/v9.2/contacts")
        stalled_bodies(gw.pid)
        silent()
        over_cap(log_path)
        stalled_stream()
        stopped_reader()
        token_hang()
        emfile()
        steady(gw.pid)
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=40)
        log.close()
    lines = open(log_path).read().splitlines()
    print(f"gateway log: {len(lines)} lines in all ({WORK}/gateway.log)")
    if failures:
        print("BOUNDS NOT HELD:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("every bound held")


main()
