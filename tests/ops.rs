//! Operations, with the real binary: metrics after mixed traffic, the audit log, hot reload on
//! SIGHUP and on a file change while a response streams, and graceful shutdown on SIGTERM.
//!
//! The simulator runs in this process; `serve` runs as a child on loopback ports. Waiting is
//! polling with a deadline; the only timed pauses pace a deliberately slow reader.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::proc::{Proc, eventually, free_port, gateway, loopback, sim_auth, wait_ready, write};
use common::{client, simulator};
use dataverse_gateway::sim::{SimConfig, Simulator};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

struct Ports {
    listen: u16,
    admin: u16,
}

/// A config with tenant `sim` (default) and tenant `tight` (one request per second), both in
/// front of `sim`, the secret in a file, the audit log in `dir/audit.jsonl`; `top` adds
/// top-level keys and `allow` is the `sim` tenant's allowlist (indented 6).
fn config(sim: &Simulator, dir: &Path, ports: &Ports, top: &str, allow: &str) -> String {
    let auth = sim_auth(sim, dir);
    format!(
        "listen: 127.0.0.1:{listen}
admin_listen: 127.0.0.1:{admin}
shutdown_grace: 20s
audit:
  output: {audit:?}
{top}tenants:
  sim:
    default: true
    dataverse:
      url: {url}
{auth}    allow:
{allow}    functions: [WhoAmI]
  tight:
    dataverse:
      url: {url}
{auth}    limits:
      requests_per_second: 1
      burst: 1
    functions: [WhoAmI]
",
        listen = ports.listen,
        admin = ports.admin,
        audit = dir.join("audit.jsonl"),
        url = sim.base_url(),
    )
}

const ALLOW: &str = "      contacts: [GET]\n      annotations: [GET]\n";

struct Running {
    proc: Proc,
    url: String,
    admin: String,
    http: reqwest::Client,
}

/// Starts `serve` with `config` (extra environment in `env`) and waits until it is ready.
async fn start(config: &str, ports: &Ports, env: &[(&str, &str)]) -> Running {
    let mut cmd = gateway();
    cmd.args(["serve", "--config", config]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut proc = Proc::spawn(&mut cmd);
    proc.wait_listening(loopback(ports.listen)).await;
    let r = Running {
        proc,
        url: format!("http://127.0.0.1:{}", ports.listen),
        admin: format!("http://127.0.0.1:{}", ports.admin),
        http: client(),
    };
    wait_ready(&r.http, &r.admin).await;
    r
}

impl Running {
    async fn status(&self, path: &str) -> u16 {
        let r = self.http.get(format!("{}{path}", self.url)).send().await;
        r.unwrap().status().as_u16()
    }

    async fn metrics(&self) -> String {
        let r = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await;
        r.unwrap().text().await.unwrap()
    }

    /// Waits until /metrics has `line` exactly; returns the whole text.
    async fn metrics_with(&self, line: &str) -> String {
        eventually(WAIT, line, || async {
            let m = self.metrics().await;
            m.lines().any(|l| l == line).then_some(m)
        })
        .await
    }

    async fn stop(&mut self) {
        self.proc.signal("TERM");
        let status = self.proc.wait_exit(WAIT * 3).await;
        assert_eq!(status.code(), Some(0), "{}", self.proc.output());
    }
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_audit_after_mixed_traffic() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        listen: free_port(),
        admin: free_port(),
    };
    let file = write(
        dir.path(),
        "gateway.yaml",
        &config(&sim, dir.path(), &ports, "", ALLOW),
    );
    let mut g = start(&file, &ports, &[]).await;

    assert_eq!(g.status("/api/data/v9.2/WhoAmI").await, 200);
    assert_eq!(
        g.status("/api/data/v9.2/contacts?$select=fullname&$top=2")
            .await,
        200
    );
    assert_eq!(g.status("/api/data/v9.2/accounts").await, 403);
    assert_eq!(g.status("/nowhere").await, 404);
    sim.throttle_next(1, 7);
    assert_eq!(
        g.status("/api/data/v9.2/contacts").await,
        429,
        "Dataverse throttles"
    );
    let mut tight = Vec::new();
    for _ in 0..3 {
        tight.push(g.status("/tight/api/data/v9.2/WhoAmI").await);
    }
    let limited = tight.iter().filter(|s| **s == 429).count();
    assert!(limited >= 1, "one request per second: {tight:?}");
    assert_eq!(tight.iter().filter(|s| **s == 200).count() + limited, 3);

    let m = g
        .metrics_with(r#"dataverse_gateway_requests_total{tenant="sim",client="-",decision="allow",status_class="2xx"} 2"#)
        .await;
    let count = |series: &str| sample(&m, series).unwrap_or_else(|| panic!("{series}\n{m}"));
    let expectations = [
        (
            r#"dataverse_gateway_requests_total{tenant="sim",client="-",decision="deny",status_class="4xx"}"#,
            1.0,
        ),
        (
            r#"dataverse_gateway_requests_total{tenant="sim",client="-",decision="allow",status_class="4xx"}"#,
            1.0,
        ),
        (
            r#"dataverse_gateway_requests_total{tenant="-",client="-",decision="none",status_class="4xx"}"#,
            1.0,
        ),
        (
            r#"dataverse_gateway_requests_total{tenant="tight",client="-",decision="none",status_class="4xx"}"#,
            limited as f64,
        ),
        (
            r#"dataverse_gateway_rate_limited_total{tenant="tight",client="-"}"#,
            limited as f64,
        ),
        (
            r#"dataverse_gateway_upstream_throttled_total{tenant="sim"}"#,
            1.0,
        ),
        (
            r#"dataverse_gateway_request_duration_seconds_count{tenant="sim"}"#,
            4.0,
        ),
        (
            r#"dataverse_gateway_upstream_duration_seconds_count{tenant="sim"}"#,
            3.0,
        ),
        (
            r#"dataverse_gateway_token_requests_total{tenant="sim",result="ok"}"#,
            1.0,
        ),
        (
            r#"dataverse_gateway_token_requests_total{tenant="sim",result="error"}"#,
            0.0,
        ),
        ("dataverse_gateway_in_flight_requests", 0.0),
        (r#"dataverse_gateway_build_info{version="0.1.0"}"#, 1.0),
    ];
    for (series, want) in expectations {
        assert_eq!(count(series), want, "{series}\n{m}");
    }
    let expiry = count(r#"dataverse_gateway_token_expiry_seconds{tenant="sim"}"#);
    assert!(expiry > 3000.0 && expiry < 3600.0, "{expiry}");
    assert_eq!(
        count(r#"dataverse_gateway_config_reloads_total{result="ok"}"#),
        0.0
    );
    eprintln!("--- /metrics after mixed traffic ---\n{m}");
    let health = g
        .http
        .get(format!("{}/healthz", g.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        g.status("/metrics").await,
        404,
        "admin paths are not on the agents' listener"
    );

    g.stop().await;
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 9, "one line per request:\n{audit}");
    for l in &lines {
        for field in [
            "timestamp",
            "request_id",
            "tenant",
            "client",
            "method",
            "path",
            "access",
            "decision",
            "reason",
            "error",
            "status",
            "upstream_status",
            "completed",
            "latency_ms",
            "bytes_in",
            "bytes_out",
        ] {
            assert!(l.get(field).is_some(), "{field} missing in {l}");
        }
    }
    let contacts = &lines[1];
    assert_eq!(
        contacts["path"], "/api/data/v9.2/contacts?$select&$top",
        "{contacts}"
    );
    assert_eq!(
        contacts["access"],
        serde_json::json!(["GET contacts [fullname]"])
    );
    assert_eq!(contacts["decision"], "allow");
    assert_eq!(contacts["reason"], "allow.contacts permits GET");
    assert_eq!(contacts["status"], 200);
    assert_eq!(contacts["upstream_status"], 200);
    assert_eq!(contacts["completed"], true);
    assert!(contacts["bytes_out"].as_u64().unwrap() > 0, "{contacts}");
    let denied = &lines[2];
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["error"], "GatewayPolicyDenied");
    assert_eq!(denied["upstream_status"], Value::Null);
    assert!(
        denied["reason"].as_str().unwrap().contains("accounts"),
        "{denied}"
    );
    assert_eq!(lines[3]["decision"], "none");
    assert_eq!(lines[4]["upstream_status"], 429);
}

/// Reads a streamed response to its end.
async fn read_all(mut r: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.expect("the stream is intact") {
        body.extend_from_slice(&chunk);
    }
    body
}

fn assert_intact(body: &[u8], sim: &Simulator, size: u64, gateway_url: &str) {
    let expected = size - sim.base_url().len() as u64 + gateway_url.len() as u64;
    assert_eq!(
        body.len() as u64,
        expected,
        "only the context URL changed length"
    );
    assert!(body.ends_with(b"]}"));
    let parsed: Value = serde_json::from_slice(body).expect("the body is whole JSON");
    assert!(parsed["value"].as_array().is_some_and(|v| !v.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_the_allowlist_while_a_response_streams_and_rejects_an_invalid_file() {
    const SIZE: u64 = 8 * 1024 * 1024;
    let sim = simulator(SimConfig {
        large_response_bytes: SIZE,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        listen: free_port(),
        admin: free_port(),
    };
    let file = write(
        dir.path(),
        "gateway.yaml",
        &config(&sim, dir.path(), &ports, "", ALLOW),
    );
    let g = start(&file, &ports, &[]).await;

    let mut stream = g
        .http
        .get(format!("{}/api/data/v9.2/annotations", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().expect("a first chunk");
    assert_eq!(g.status("/api/data/v9.2/accounts").await, 403);
    let tokens = sim.token_requests();

    // SIGHUP with a new allowlist: accounts becomes readable for new requests.
    let wider = format!("{ALLOW}      accounts: [GET]\n");
    write(
        dir.path(),
        "gateway.yaml",
        &config(&sim, dir.path(), &ports, "", &wider),
    );
    g.proc.signal("HUP");
    g.metrics_with(r#"dataverse_gateway_config_reloads_total{result="ok"} 1"#)
        .await;
    assert_eq!(g.status("/api/data/v9.2/accounts").await, 200);
    assert_eq!(
        sim.token_requests(),
        tokens,
        "the token caches survived the reload"
    );

    // An invalid file never replaces the working config.
    let broken = config(&sim, dir.path(), &ports, "colour: blue\n", ALLOW);
    write(dir.path(), "gateway.yaml", &broken);
    g.proc.signal("HUP");
    g.metrics_with(r#"dataverse_gateway_config_reloads_total{result="error"} 1"#)
        .await;
    assert_eq!(
        g.status("/api/data/v9.2/accounts").await,
        200,
        "old policy still serving"
    );
    let stderr = g.proc.stderr();
    assert!(
        stderr.contains(&format!("{file}:6:1: colour: unknown key `colour`")),
        "{stderr}"
    );

    // A file change alone (no signal) reloads too: an editor's write-and-rename.
    let narrow = config(&sim, dir.path(), &ports, "", ALLOW);
    write(dir.path(), "gateway.yaml.new", &narrow);
    std::fs::rename(dir.path().join("gateway.yaml.new"), &file).unwrap();
    eventually(WAIT, "the file change to be applied", || async {
        (g.status("/api/data/v9.2/accounts").await == 403).then_some(())
    })
    .await;

    // The stream that started before all three reloads completes intact.
    let mut body = first.to_vec();
    body.extend(read_all(stream).await);
    assert_intact(&body, &sim, SIZE, &g.url);
    let m = g.metrics().await;
    assert!(sample(&m, r#"dataverse_gateway_config_reloads_total{result="ok"}"#).unwrap() >= 2.0);
    assert_eq!(
        sim.token_requests(),
        tokens,
        "no new token after three reloads"
    );
    eprintln!("--- reload log ---\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_5s_stream_finish_refuses_new_connections_and_exits_0() {
    // Far more than the loopback socket buffers hold, so the gateway is still streaming for as
    // long as the agent is still reading.
    const SIZE: u64 = 64 * 1024 * 1024;
    let sim = simulator(SimConfig {
        large_response_bytes: SIZE,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports {
        listen: free_port(),
        admin: free_port(),
    };
    let file = write(
        dir.path(),
        "gateway.yaml",
        &config(&sim, dir.path(), &ports, "", ALLOW),
    );
    let mut g = start(&file, &ports, &[]).await;

    let mut stream = g
        .http
        .get(format!("{}/api/data/v9.2/annotations", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let started = Instant::now();
    let mut body = stream
        .chunk()
        .await
        .unwrap()
        .expect("a first chunk")
        .to_vec();
    g.proc.signal("TERM");
    eventually(WAIT, "new connections to be refused", || async {
        tokio::net::TcpStream::connect(loopback(ports.listen))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let ready = g
        .http
        .get(format!("{}/readyz", g.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready while draining");

    // A slow agent: the body takes about five seconds to read.
    let rate = SIZE as f64 / 5.0;
    let mut checked_midway = false;
    while let Some(chunk) = stream.chunk().await.expect("the stream is intact") {
        body.extend_from_slice(&chunk);
        if !checked_midway && body.len() as u64 > SIZE / 2 {
            assert!(g.proc.exited().is_none(), "the gateway exited mid-stream");
            checked_midway = true;
        }
        let due = Duration::from_secs_f64(body.len() as f64 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let took = started.elapsed();
    assert_intact(&body, &sim, SIZE, &g.url);
    assert!(
        took >= Duration::from_secs(4),
        "the stream was paced: {took:?}"
    );
    let status = g.proc.wait_exit(WAIT).await;
    assert_eq!(status.code(), Some(0), "{}", g.proc.output());
    eprintln!(
        "stream of {} bytes took {took:?}; shutdown log:\n{}",
        body.len(),
        g.proc.stderr()
    );
}
