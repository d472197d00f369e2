//! Hostile clients and failing dependencies: every wait bounded, every buffer budgeted, every
//! failure visible. Each test asserts its bound against a gateway configured with real but SHORT
//! timeouts (the bounds are network waits the injected clock cannot drive), and every wait in
//! a test has a deadline.

#[path = "hostile/upstream.rs"]
mod upstream;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dataverse_gateway::audit::AuditSink;
use dataverse_gateway::clock::{Clock, SystemClock};
use dataverse_gateway::config::{self, Config};
use dataverse_gateway::gateway::Gateway;
use dataverse_gateway::metrics::{ErrorLabels, ReasonLabel};
use dataverse_gateway::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use upstream::Upstream;

/// Timeouts of every gateway here (overridable per test through `extra`).
const TIMEOUTS: &str = "timeouts:
  request_head: 300ms
  request_body_idle: 300ms
  request_body: 1s
  upstream_body_idle: 300ms
  token_wait: 300ms
";

struct Gw {
    gateway: Arc<Gateway>,
    url: String,
    addr: std::net::SocketAddr,
    upstream: Upstream,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
    yaml: String,
}

fn yaml(upstream: &Upstream, audit: &std::path::Path, head: &str, max_concurrent: u32) -> String {
    format!(
        "{head}audit:\n  output: {audit}\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n      metadata_file: {csdl}\n    auth:\n      tenant_id: 00000000-0000-0000-0000-000000000001\n      client_id: 00000000-0000-0000-0000-000000000002\n      authority: {url}\n      client_secret: \"not-a-real-secret\"\n    limits:\n      max_concurrent: {max_concurrent}\n    allow:\n      contacts: [GET, POST, PATCH]\n      accounts: [GET]\n      leads: [GET]\n",
        audit = audit.display(),
        url = upstream.url(),
        csdl = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/metadata.xml"),
    )
}

fn parse(text: &str) -> Config {
    config::parse_str(text, "hostile.yaml")
        .unwrap_or_else(|d| panic!("{d}\n{text}"))
        .0
}

/// A gateway on loopback in front of a fresh misbehaving upstream; `head` is YAML put before
/// `tenants:` (timeouts, limits).
async fn start(head: &str, max_concurrent: u32) -> Gw {
    dataverse_gateway::upstream::install_crypto_provider();
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let text = yaml(&upstream, &audit, head, max_concurrent);
    let config = parse(&text);
    let audit_config = config.audit.clone().unwrap();
    let gateway = Gateway::new(config, Arc::new(SystemClock) as Arc<dyn Clock>).unwrap();
    let sink = AuditSink::start(&audit_config, gateway.metrics.audit_dropped.clone()).unwrap();
    gateway.set_audit(sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let g = Arc::clone(&gateway);
    tokio::spawn(server::serve(
        listener,
        g,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    Gw {
        gateway,
        url: format!("http://{addr}/api/data/v9.2"),
        addr,
        upstream,
        audit,
        _dir: dir,
        yaml: text,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

impl Gw {
    /// The audit records written so far.
    fn audit(&self) -> Vec<serde_json::Value> {
        if let Some(sink) = self.gateway.audit() {
            sink.flush(Duration::from_secs(5));
        }
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn errors(&self, tenant: &str, code: &'static str) -> u64 {
        let labels = ErrorLabels {
            tenant: tenant.into(),
            code,
        };
        self.gateway.metrics.errors.get_or_create(&labels).get()
    }

    fn closed(&self, reason: &'static str) -> u64 {
        self.gateway
            .metrics
            .connections_closed
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// A normal request still works (within a deadline).
    async fn served(&self) {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client().get(format!("{}/contacts", self.url)).send(),
        )
        .await
        .expect("a normal request is answered in time")
        .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// Waits (up to `within`) for the peer to close `tcp`; returns how long it took.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("connection still open after {within:?}"),
        }
    }
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_within_the_head_timeout() {
    let gw = start(TIMEOUTS, 4).await;
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let mut partial = TcpStream::connect(gw.addr).await.unwrap();
    partial
        .write_all(b"GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // HTTP/2 with prior knowledge: the preface and SETTINGS, then nothing.
    let mut h2 = TcpStream::connect(gw.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    gw.served().await;
    let bound = Duration::from_millis(300 + 700);
    for tcp in silent.iter_mut().chain([&mut partial, &mut h2]) {
        closed_within(tcp, bound).await;
    }
    assert_eq!(gw.closed("head_timeout"), 202);
    assert_eq!(gw.gateway.listener.open(), 0, "every connection is gone");
    gw.served().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_head_timeout_between_requests() {
    let gw = start(TIMEOUTS, 4).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("{\"value\":[]}") {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "answered before closing");
        seen.extend_from_slice(&buf[..n]);
    }
    closed_within(&mut tcp, Duration::from_secs(1)).await;
}

/// Captures the log lines written while a test runs (current-thread runtime only).
#[derive(Clone, Default)]
struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn lines_with(&self, text: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn over_the_connection_cap_new_connections_are_refused_at_once_and_readyz_says_so() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let head = "timeouts:\n  request_head: 10s\nlimits:\n  max_connections: 20\n";
    let gw = start(head, 4).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let full = async {
        while gw.gateway.listener.open() < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), full)
        .await
        .unwrap();
    for _ in 0..50 {
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            client().get(format!("{}/contacts", gw.url)).send(),
        )
        .await
        .expect("refused quickly, not left hanging");
        if let Ok(r) = r {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()["retry-after"], "1");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "GatewayOverloaded");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let why = gw.gateway.listener.not_accepting().expect("not ready");
    assert!(why.contains("cap of 20"), "{why}");
    let snapshot = gw.gateway.snapshot();
    let reasons =
        dataverse_gateway::admin::not_ready(&snapshot, false, gw.gateway.listener.not_accepting());
    assert!(
        reasons.iter().any(|r| r.contains("cap of 20")),
        "{reasons:?}"
    );
    assert_eq!(gw.closed("over_capacity"), 50);
    drop(silent);
    let drained = async {
        while gw.gateway.listener.open() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .unwrap();
    assert_eq!(gw.gateway.listener.not_accepting(), None);
    gw.served().await;
    assert_eq!(
        log.lines_with("at the cap"),
        1,
        "one line on reaching the cap"
    );
    assert_eq!(
        log.lines_with("below the cap again"),
        1,
        "one line on leaving it"
    );
}

/// Sends a request head declaring `declared` bytes and then `sent` bytes of body.
async fn stalled_write(gw: &Gw, declared: usize, sent: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; sent];
    tcp.write_all(&chunk).await.unwrap();
    tcp
}

/// Reads the status line of the answer (within `within`).
async fn status_of(tcp: &mut TcpStream, within: Duration) -> (u16, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
                break;
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("answered in time");
    let text = String::from_utf8_lossy(&seen).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn a_stalled_write_body_is_answered_408_within_the_body_timeout() {
    let gw = start(TIMEOUTS, 2).await;
    let started = Instant::now();
    let mut a = stalled_write(&gw, 1 << 20, 512 << 10).await;
    let mut b = stalled_write(&gw, 1 << 20, 10).await;
    // Both stalled bodies hold the tenant's two slots; a GET waits in line meanwhile and is
    // served once they are answered.
    let get = tokio::spawn({
        let url = format!("{}/contacts", gw.url);
        async move { client().get(url).send().await.unwrap().status() }
    });
    for tcp in [&mut a, &mut b] {
        let (status, text) = status_of(tcp, Duration::from_secs(2)).await;
        assert_eq!(status, 408, "{text}");
        assert!(text.contains("GatewayRequestTimeout"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_millis(300 + 700));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), get)
            .await
            .unwrap()
            .unwrap(),
        200
    );
    assert_eq!(gw.gateway.snapshot().tenants[0].limits.in_flight(), 0);
    assert_eq!(gw.gateway.budget.used(), 0, "the budget is given back");
    let audit = gw.audit();
    let timed_out: Vec<_> = audit.iter().filter(|r| r["status"] == 408).collect();
    assert_eq!(timed_out.len(), 2, "{audit:?}");
    assert_eq!(timed_out[0]["error"], "GatewayRequestTimeout");
    assert_eq!(gw.errors("contoso", "GatewayRequestTimeout"), 2);
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_at_the_total_body_timeout() {
    let gw = start(TIMEOUTS, 2).await;
    let started = Instant::now();
    let tcp = stalled_write(&gw, 1000, 1).await;
    let (mut read, mut write) = tcp.into_split();
    // One byte every 100 ms: never a pause over request_body_idle (300 ms).
    let dribble = tokio::spawn(async move {
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let answer = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("GatewayRequestTimeout") {
            let n = read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    });
    answer.await.expect("answered in time");
    dribble.abort();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1800),
        "answered after {took:?}; request_body is 1s"
    );
}

/// Runs `tasks` to their ends (each has its own deadline inside or around it).
async fn all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn buffered_bodies_together_stay_under_the_budget() {
    let head = "timeouts:\n  request_body_idle: 10s\n  request_body: 10s\nlimits:\n  max_buffered_bytes: 4MiB\n";
    let gw = start(head, 10).await;
    let declared = 1536 << 10;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(stalled_write(&gw, declared, 1 << 20).await);
    }
    let charged = async {
        while gw.gateway.budget.used() < 2 * declared as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), charged)
        .await
        .unwrap();
    for _ in 0..3 {
        let mut refused = stalled_write(&gw, declared, 1 << 20).await;
        let (status, text) = status_of(&mut refused, Duration::from_secs(2)).await;
        assert_eq!(status, 503, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1"),
            "{text}"
        );
        assert!(text.contains("GatewayOverloaded"), "{text}");
    }
    assert!(gw.gateway.budget.used() <= 4 << 20);
    gw.served().await;
    drop(held);
    let released = async {
        while gw.gateway.budget.used() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stalled_upstream_stream_ends_within_the_idle_timeout_and_frees_its_slot() {
    let gw = start(TIMEOUTS, 2).await;
    let started = Instant::now();
    let reads = (0..2).map(|_| {
        let url = format!("{}/accounts", gw.url);
        tokio::spawn(async move {
            let mut r = client().get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let mut failed = false;
            loop {
                match r.chunk().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            failed
        })
    });
    let ended = tokio::time::timeout(Duration::from_secs(3), all(reads.collect()))
        .await
        .expect("the streams end");
    assert_eq!(
        ended,
        vec![true, true],
        "each ends as an error, not as a complete body"
    );
    assert!(started.elapsed() < Duration::from_millis(300 + 900));
    assert_eq!(gw.gateway.snapshot().tenants[0].limits.in_flight(), 0);
    gw.served().await;
    let audit = gw.audit();
    let stalled: Vec<_> = audit
        .iter()
        .filter(|r| r["error"] == "GatewayUpstreamStalled")
        .collect();
    assert_eq!(stalled.len(), 2, "{audit:?}");
    assert_eq!(stalled[0]["completed"], false);
    assert_eq!(stalled[0]["status"], 200);
    let labels = ErrorLabels {
        tenant: "contoso".into(),
        code: "GatewayUpstreamStalled",
    };
    assert_eq!(
        gw.gateway
            .metrics
            .upstream_body_errors
            .get_or_create(&labels)
            .get(),
        2
    );
}

#[tokio::test]
async fn a_truncated_upstream_body_is_recorded_unlike_an_agent_that_went_away() {
    let gw = start(TIMEOUTS, 2).await;
    let mut r = client()
        .get(format!("{}/leads", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut failed = false;
    let read = async {
        loop {
            match r.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), read)
        .await
        .unwrap();
    assert!(failed, "the agent can tell: no terminating chunk");
    // An agent that hangs up mid-stream.
    let gone = client()
        .get(format!("{}/accounts", gw.url))
        .send()
        .await
        .unwrap();
    drop(gone);
    let audit = async {
        loop {
            let audit = gw.audit();
            if audit.len() >= 2 {
                return audit;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let audit = tokio::time::timeout(Duration::from_secs(3), audit)
        .await
        .unwrap();
    let leads = audit
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("/leads"))
        .unwrap();
    assert_eq!(leads["error"], "GatewayUpstreamTruncated", "{leads}");
    assert_eq!(leads["completed"], false);
    let accounts = audit
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("/accounts"))
        .unwrap();
    assert_eq!(accounts["error"], serde_json::Value::Null, "{accounts}");
    assert_eq!(accounts["completed"], false);
    let labels = ErrorLabels {
        tenant: "contoso".into(),
        code: "GatewayUpstreamTruncated",
    };
    assert_eq!(
        gw.gateway
            .metrics
            .upstream_body_errors
            .get_or_create(&labels)
            .get(),
        1
    );
}

#[tokio::test]
async fn with_the_token_endpoint_hanging_requests_get_503_fast() {
    let upstream_hangs = start(TIMEOUTS, 4).await;
    let gw = upstream_hangs;
    gw.upstream.state.hang_tokens.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        client().get(format!("{}/contacts", gw.url)).send(),
    )
    .await
    .expect("answered, not left waiting for the token")
    .unwrap();
    assert_eq!(r.status(), 503);
    let first = started.elapsed();
    assert!(first < Duration::from_millis(300 + 500), "{first:?}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "GatewayTokenUnavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has not been answered")
    );
    // Later requests do not queue behind the hanging fetch.
    for _ in 0..5 {
        let started = Instant::now();
        let r = client()
            .get(format!("{}/contacts", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert!(started.elapsed() < Duration::from_millis(200));
    }
    assert_eq!(
        gw.upstream.state.token_requests.load(Ordering::SeqCst),
        1,
        "single flight"
    );
}

#[tokio::test]
async fn a_reload_storm_never_lets_more_than_the_cap_reach_the_org() {
    let head = "timeouts:\n  request_head: 5s\n";
    let gw = start(head, 3).await;
    gw.upstream.state.delay_ms.store(30, Ordering::SeqCst);
    gw.served().await;
    let requests: Vec<_> = (0..60)
        .map(|_| {
            let url = format!("{}/contacts", gw.url);
            tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for i in 0..100 {
        // The cap alternates between 3 and 2, and the rate settings change too.
        let cap = if i % 2 == 0 { 2 } else { 3 };
        let text = gw
            .yaml
            .replace("max_concurrent: 3", &format!("max_concurrent: {cap}"));
        gw.gateway.swap(parse(&text)).unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let statuses = tokio::time::timeout(Duration::from_secs(20), all(requests))
        .await
        .unwrap();
    let ok = statuses
        .into_iter()
        .filter(|s| matches!(s, Ok(200)))
        .count();
    assert!(ok > 0);
    let max = gw.upstream.state.max_in_flight.load(Ordering::SeqCst);
    assert!(
        max <= 3,
        "{max} requests reached the org at once; the cap is at most 3"
    );
}

#[tokio::test]
async fn a_request_head_over_the_limits_is_answered_431_audited_and_counted() {
    let gw = start(TIMEOUTS, 2).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let mut head = String::from("GET /api/data/v9.2/contacts HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        head.push_str(&format!("x-h{i}: v\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut seen)).await;
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 431"));
    let audit = async {
        loop {
            let audit = gw.audit();
            if !audit.is_empty() {
                return audit;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let audit = tokio::time::timeout(Duration::from_secs(3), audit)
        .await
        .unwrap();
    assert_eq!(audit[0]["status"], 431);
    assert_eq!(audit[0]["error"], "GatewayHeadersTooLarge");
    assert_eq!(gw.errors("-", "GatewayHeadersTooLarge"), 1);
    assert_eq!(gw.closed("head_too_large"), 1);
}
