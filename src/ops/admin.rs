//! The admin listener (`admin_listen`): `/metrics`, `/healthz`, `/readyz`. Nothing else.
//!
//! - `/healthz`: 200 while the process serves (liveness).
//! - `/readyz`: 200 when the config is loaded, the gateway is not draining for shutdown, the
//!   agents' listener can take connections (not at `limits.max_connections`, accept not
//!   failing), and every tenant holds a valid token and its metadata; otherwise 503 with the
//!   reasons (tenant names only). The body also reports, per tenant whose credential lives in
//!   Key Vault, the vault's state ([`vault_states`]): the version in use and the last error — a
//!   failing vault alone does not make the gateway unready while the token is valid.
//!   Agents' traffic is never served here, and the agents' listener never serves these paths.
//!
//! The admin listener keeps serving during the shutdown grace period, so a load balancer sees
//! `/readyz` turn 503 while requests drain. It keeps one file descriptor in reserve: when the
//! process runs out (EMFILE), the reserve is given up to accept the probe, so `/readyz` still
//! answers 503 rather than the admin port going silent. Accept errors back off quietly
//! ([`crate::proxy::server::AcceptBackoff`]); an admin connection lives at most
//! [`ADMIN_CONNECTION_LIFETIME`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::proxy::body::{self, BoxBody};
use crate::proxy::gateway::{Gateway, Snapshot};
use crate::telemetry::metrics;

/// The longest an admin connection stays open.
pub const ADMIN_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Process state that readiness depends on beyond the snapshot.
#[derive(Default)]
pub struct Health {
    draining: AtomicBool,
}

impl Health {
    /// From now on `/readyz` answers 503: the process is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Why the gateway is not ready; empty when it is.
pub fn not_ready(
    snapshot: &Snapshot,
    draining: bool,
    listener_reason: Option<String>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if draining {
        reasons.push("shutting down".to_string());
    }
    reasons.extend(listener_reason);
    for t in &snapshot.tenants {
        if t.token.expires_in().is_none() {
            reasons.push(format!("tenant {} has no valid token", t.config.name));
        }
        if t.metadata().is_none() {
            reasons.push(format!(
                "tenant {} has no metadata yet (requests that need it are denied)",
                t.config.name
            ));
        }
    }
    reasons
}

/// Per tenant with a Key Vault credential: the vault, the object, the version in use, and
/// `ok` or `failing` with the error (no value, no token).
pub fn vault_states(snapshot: &Snapshot) -> serde_json::Value {
    let mut states = serde_json::Map::new();
    for t in &snapshot.tenants {
        if let Some(v) = t.token.vault() {
            let s = v.status();
            let state = if s.error.is_some() { "failing" } else { "ok" };
            states.insert(
                t.config.name.clone(),
                serde_json::json!({ "state": state, "vault": s.vault, "object": s.object, "version": s.version, "error": s.error }),
            );
        }
    }
    serde_json::Value::Object(states)
}

struct Admin {
    gateway: Arc<Gateway>,
    health: Arc<Health>,
    registry: Registry,
}

/// Serves the admin endpoints until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()>,
) {
    let registry = gateway.metrics.registry(gateway.clone());
    let admin = Arc::new(Admin {
        gateway,
        health,
        registry,
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut backoff = crate::proxy::server::AcceptBackoff::new("admin");
    let mut spare = reserve();
    tokio::pin!(shutdown);
    loop {
        if spare.is_none() {
            spare = reserve();
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => {
                    backoff.succeeded(None);
                    s
                }
                Err(e) if out_of_files(&e) && spare.is_some() => {
                    // The process is out of file descriptors: the reserved one lets `/readyz`
                    // say so instead of the admin port going silent too.
                    spare = None;
                    let retry = tokio::time::timeout(Duration::from_millis(100), listener.accept());
                    match retry.await {
                        Ok(Ok((s, _))) => s,
                        _ => continue,
                    }
                }
                Err(e) => {
                    backoff.failed(&e, None).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let admin = Arc::clone(&admin);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let admin = Arc::clone(&admin);
            async move { Ok::<_, Infallible>(admin.answer(&req)) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        // Bounded like every wait: a scraper reconnects, a silent client is closed.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(ADMIN_CONNECTION_LIFETIME, conn).await;
        });
    }
}

/// A file descriptor held in reserve for the admin listener (`/dev/null`, opened once).
fn reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// EMFILE or ENFILE: the process or the system is out of file descriptors.
fn out_of_files(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

impl Admin {
    fn answer(&self, req: &Request<Incoming>) -> Response<BoxBody> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            );
        }
        match req.uri().path() {
            "/metrics" => text(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::render(&self.registry),
            ),
            "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
            "/readyz" => {
                let reasons = not_ready(
                    &self.gateway.snapshot(),
                    self.health.draining(),
                    self.gateway.listener.not_accepting(),
                );
                let status = if reasons.is_empty() {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let snapshot = self.gateway.snapshot();
                let mut body =
                    serde_json::json!({ "ready": reasons.is_empty(), "reasons": reasons });
                let vaults = vault_states(&snapshot);
                if vaults.as_object().is_some_and(|v| !v.is_empty()) {
                    body["key_vault"] = vaults;
                }
                text(status, "application/json", body.to_string())
            }
            _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        }
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<BoxBody> {
    let mut r = Response::new(body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}
