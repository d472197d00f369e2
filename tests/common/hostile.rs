//! The hostile suites' gateway: real but SHORT timeouts, its audit log in a temporary
//! directory, in front of a fresh misbehaving [`Upstream`]; raw-socket helpers and a log
//! capture.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataverse_gateway::clock::{Clock, SystemClock};
use dataverse_gateway::config::{self, Config};
use dataverse_gateway::proxy::gateway::Gateway;
use dataverse_gateway::telemetry::metrics::{ErrorLabels, ReasonLabel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::upstream::Upstream;
use super::{SIM_CSDL, Served, serve};

/// Timeouts of every gateway here (overridable per test through `extra`).
pub const TIMEOUTS: &str = "timeouts:
  request_head: 300ms
  request_body_idle: 300ms
  request_body: 1s
  upstream_body_idle: 300ms
  response_body_idle: 300ms
  token_wait: 300ms
";

pub struct Gw {
    pub gateway: Arc<Gateway>,
    /// `http://127.0.0.1:PORT/api/data/v9.2`
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub upstream: Upstream,
    pub audit: std::path::PathBuf,
    pub yaml: String,
    _served: Served,
    _dir: tempfile::TempDir,
}

pub fn yaml(
    upstream: &Upstream,
    audit: &std::path::Path,
    head: &str,
    max_concurrent: u32,
) -> String {
    format!(
        "{head}audit:\n  output: {audit}\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n      metadata_file: {csdl}\n    auth:\n      tenant_id: 00000000-0000-0000-0000-000000000001\n      client_id: 00000000-0000-0000-0000-000000000002\n      authority: {url}\n      client_secret: \"not-a-real-secret\"\n    limits:\n      max_concurrent: {max_concurrent}\n    allow:\n      contacts: [GET, POST, PATCH]\n      accounts: [GET]\n      leads: [GET]\n      annotations: [GET]\n",
        audit = audit.display(),
        url = upstream.url(),
        csdl = SIM_CSDL,
    )
}

/// `text` as a config, for a reload.
pub fn parse(text: &str) -> Config {
    config::parse_str(text, "hostile.yaml")
        .unwrap_or_else(|d| panic!("{d}\n{text}"))
        .0
}

/// A gateway on loopback in front of a fresh misbehaving upstream; `head` is YAML put before
/// `tenants:` (timeouts, limits).
pub async fn start(head: &str, max_concurrent: u32) -> Gw {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let text = yaml(&upstream, &audit, head, max_concurrent);
    let served = serve(&text, Arc::new(SystemClock) as Arc<dyn Clock>).await;
    Gw {
        gateway: Arc::clone(&served.gateway),
        url: format!("{}/api/data/v9.2", served.url()),
        addr: served.addr,
        upstream,
        audit,
        yaml: text,
        _served: served,
        _dir: dir,
    }
}

impl Gw {
    /// The audit records written so far.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        if let Some(sink) = self.gateway.audit() {
            sink.flush(Duration::from_secs(5));
        }
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn errors(&self, tenant: &str, code: &'static str) -> u64 {
        let labels = ErrorLabels {
            tenant: tenant.into(),
            code,
        };
        self.gateway.metrics.errors.get_or_create(&labels).get()
    }

    pub fn closed(&self, reason: &'static str) -> u64 {
        self.gateway
            .metrics
            .connections_closed
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// A normal request still works (within a deadline).
    pub async fn served(&self) {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            super::client().get(format!("{}/contacts", self.url)).send(),
        )
        .await
        .expect("a normal request is answered in time")
        .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// Waits (up to `within`) for the peer to close `tcp`; returns how long it took.
pub async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Duration {
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

/// Captures the log lines written while a test runs (current-thread runtime only).
#[derive(Clone, Default)]
pub struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

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
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn lines_with(&self, text: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

/// Sends a request head declaring `declared` bytes and then `sent` bytes of body.
pub async fn stalled_write(gw: &Gw, declared: usize, sent: usize) -> TcpStream {
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
pub async fn status_of(tcp: &mut TcpStream, within: Duration) -> (u16, String) {
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

/// Runs `tasks` to their ends (each has its own deadline inside or around it).
pub async fn all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
