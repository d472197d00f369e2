//! The MCP front door: Model Context Protocol over Streamable HTTP at `/{tenant}/mcp` and
//! `/mcp` (the tenant the Host header or the default names), JSON-RPC 2.0, JSON responses.
//!
//! Revisions served: the `initialize` handshake revisions 2025-06-18 and 2025-11-25, and the
//! stateless 2026-07-28 revision (`server/discover`, version and client data in each request's
//! `_meta`, mirrored in the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, which
//! must match the body: `400` with `HeaderMismatch` otherwise).
//!
//! Invariants:
//! - this layer only builds requests: each tool call becomes Web API requests that go through
//!   [`Gateway::handle_agent`] (the one pipeline: authenticate, route, classify and decide,
//!   limit, token, forward, rewrite, audit) with the caller's own credentials. It adds no way
//!   around the policy; the tool list ([`tools`]) is derived from the same allowlist;
//! - the caller is authenticated as the Web API authenticates it, before anything else, and must
//!   be allowed the tenant;
//! - stateless: nothing is stored between calls. `Mcp-Session-Id` is minted on `initialize`
//!   (legacy revisions) and never looked up; a request with another id, or none, is served the
//!   same, so replicas need no sticky sessions. Query continuation rides in a signed
//!   [`cursor`];
//! - `GET` (the legacy server-to-client stream) and `DELETE` (session end) answer 405: this
//!   server sends nothing unprompted and keeps no session to end.

pub mod cursor;
pub mod describe;
mod handler;
mod labels;
pub mod plan;
pub mod rpc;
mod run;
pub mod tools;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use self::rpc::ErrorObject;
use crate::config::Policy;
use crate::error::GatewayError;
use crate::identity::clients;
use crate::proxy::body::{self, BoxBody};
use crate::proxy::gateway::{Gateway, Snapshot, TenantRuntime};
use crate::proxy::pipeline::respond_error;

/// Handshake revisions, oldest first.
pub const LEGACY_VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";
/// Largest MCP message accepted (bytes).
pub const MAX_MESSAGE: usize = 1 << 20;

static SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// `Some(tenant)` when `path` is an MCP endpoint: `/mcp` (`None`: Host or default routing) or
/// `/{tenant}/mcp`.
pub fn endpoint(path: &str) -> Option<Option<&str>> {
    if path == "/mcp" {
        return Some(None);
    }
    let name = path.strip_prefix('/')?.strip_suffix("/mcp")?;
    (!name.is_empty() && !name.contains('/')).then_some(Some(name))
}

/// Serves one POST (or refuses another method) at an MCP endpoint.
pub async fn serve(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<BoxBody> {
    let snapshot = gateway.snapshot();
    let (parts, incoming) = req.into_parts();
    let tenant = match admit(&snapshot, &parts).await {
        Ok(t) => t,
        Err(e) => return respond_error(&e),
    };
    if parts.method != Method::POST {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let wait = snapshot.config.timeouts.request_body;
    let read = tokio::time::timeout(wait, Limited::new(incoming, MAX_MESSAGE).collect()).await;
    let bytes = match read {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => {
            let e = ErrorObject::new(
                rpc::INVALID_REQUEST,
                format!("the message is over {MAX_MESSAGE} bytes or broke off"),
            );
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &rpc::Response::error(Value::Null, e),
                None,
            );
        }
        Err(_) => {
            return respond_error(&GatewayError::RequestTimeout(
                "the MCP message did not arrive in time".into(),
            ));
        }
    };
    let mcp = handler::Mcp {
        settings: snapshot.config.mcp,
        gateway,
        who: tenant,
        parts: &parts,
    };
    mcp.answer(&bytes).await
}

/// The caller, authenticated and allowed the tenant it addressed.
pub(crate) struct Admitted {
    pub tenant: Arc<TenantRuntime>,
    /// `/{tenant}` when the MCP URL named the tenant, else empty.
    pub prefix: String,
    /// The internal client, when clients are configured.
    pub client: Option<String>,
    /// The client's own policy on this tenant, when it narrows the tenant's.
    pub narrowed: Option<Arc<Policy>>,
}

impl Admitted {
    /// The policy this caller runs under: the client's effective policy, else the tenant's
    /// (the same choice the pipeline makes for every request the tools build).
    pub fn policy(&self) -> &Policy {
        self.narrowed
            .as_deref()
            .unwrap_or(&self.tenant.config.policy)
    }
}

/// Authenticates the caller exactly as the pipeline does, then routes and authorizes.
async fn admit(
    snapshot: &Snapshot,
    parts: &http::request::Parts,
) -> Result<Admitted, GatewayError> {
    let agents = snapshot.agents.as_deref();
    let client = clients::authenticate(&snapshot.config.clients, agents, &parts.headers).await?;
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    check_origin(&parts.headers, host)?;
    let named = endpoint(parts.uri.path()).flatten();
    let path = match named {
        Some(name) => format!("/{name}/api/data/"),
        None => "/api/data/".to_string(),
    };
    let routed = snapshot
        .routes
        .route(&path, host)
        .map_err(GatewayError::NotFound)?;
    let tenant = Arc::clone(&snapshot.tenants[routed.tenant]);
    clients::authorize(client, &tenant.config.name)?;
    let prefix = named.map(|n| format!("/{n}")).unwrap_or_default();
    let narrowed = client
        .and_then(|c| c.policy_for(&tenant.config.name))
        .cloned();
    Ok(Admitted {
        tenant,
        prefix,
        client: client.map(|c| c.name.clone()),
        narrowed,
    })
}

/// DNS-rebinding guard (the transport requires it): an `Origin`, when sent, must be this host.
fn check_origin(headers: &HeaderMap, host: Option<&str>) -> Result<(), GatewayError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(GatewayError::PolicyDenied(
            "the request's Origin is not this gateway".into(),
        )),
    }
}

pub(crate) fn json_response(
    status: StatusCode,
    message: &rpc::Response,
    session: Option<&str>,
) -> Response<BoxBody> {
    let mut r = json_bytes(status, serde_json::to_vec(message).unwrap_or_default());
    if let Some(id) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        r.headers_mut().insert(SESSION_ID.clone(), id);
    }
    r
}

/// A JSON message already serialised.
pub(crate) fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response<BoxBody> {
    let mut r = Response::new(body::full(Bytes::from(bytes)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
