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

mod cursor;
mod describe;
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
use serde_json::{Map, Value, json};

use self::plan::{Plan, PlanError};
use self::rpc::{ErrorObject, Message};
use self::run::{Caller, Outcome};
use self::tools::{Catalogue, DEFAULT_PAGE_CAP};
use crate::error::GatewayError;
use crate::identity::clients;
use crate::proxy::agent_body::McpTool;
use crate::proxy::body::{self, BoxBody};
use crate::proxy::gateway::{Gateway, Snapshot, TenantRuntime};
use crate::proxy::pipeline::respond_error;

/// Handshake revisions, oldest first.
pub const LEGACY_VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";
/// Largest MCP message accepted (bytes).
pub const MAX_MESSAGE: usize = 1 << 20;

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_SERVER: &str = "io.modelcontextprotocol/serverInfo";
static SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
static PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

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
    let tenant = match admit(&snapshot, &parts) {
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
    let (tenant, client) = tenant;
    let mcp = Mcp {
        gateway,
        snapshot: &snapshot,
        tenant,
        client,
        parts: &parts,
    };
    mcp.answer(&bytes).await
}

/// Authenticates the caller exactly as the pipeline does, then routes and authorizes.
fn admit(
    snapshot: &Snapshot,
    parts: &http::request::Parts,
) -> Result<((Arc<TenantRuntime>, String), Option<String>), GatewayError> {
    let client = clients::authenticate(&snapshot.config.clients, &parts.headers)?;
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
    Ok(((tenant, prefix), client.map(|c| c.name.clone())))
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

struct Mcp<'a> {
    gateway: Arc<Gateway>,
    snapshot: &'a Snapshot,
    tenant: (Arc<TenantRuntime>, String),
    client: Option<String>,
    parts: &'a http::request::Parts,
}

/// How one request is spoken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Era {
    Legacy,
    Modern,
}

impl Mcp<'_> {
    async fn answer(&self, bytes: &[u8]) -> Response<BoxBody> {
        let (id, method, params) = match rpc::parse(bytes) {
            Ok(Message::Request { id, method, params }) => (id, method, params),
            Ok(Message::Accepted) => {
                let mut r = Response::new(body::empty());
                *r.status_mut() = StatusCode::ACCEPTED;
                return r;
            }
            Err(m) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &rpc::Response::error(Value::Null, m.error()),
                    None,
                );
            }
        };
        let era = match self.era(&method, &params) {
            Ok(era) => era,
            Err(e) => {
                return json_response(StatusCode::BAD_REQUEST, &rpc::Response::error(id, e), None);
            }
        };
        let mut session = None;
        let result = match method.as_str() {
            "initialize" if era == Era::Legacy => {
                session = Some(uuid::Uuid::new_v4().to_string());
                Ok(self.initialize(&params))
            }
            "ping" if era == Era::Legacy => Ok(json!({})),
            "server/discover" => Ok(self.discover()),
            "tools/list" => Ok(self.tools_list(era)),
            "tools/call" => {
                let r = self.tools_call(&params).await;
                self.count_call(&params, &r);
                let response = match r {
                    Ok(outcome) => rpc::Response::raw(
                        id,
                        outcome.into_result(
                            (era == Era::Modern).then(|| json!({ META_SERVER: server_info() })),
                        ),
                    ),
                    Err(e) => rpc::Response::error(id, e),
                };
                return json_response(StatusCode::OK, &response, None);
            }
            other => {
                let e = ErrorObject::new(
                    rpc::METHOD_NOT_FOUND,
                    format!("method `{other}` is not served here"),
                );
                let status = match era {
                    Era::Modern => StatusCode::NOT_FOUND,
                    Era::Legacy => StatusCode::OK,
                };
                return json_response(status, &rpc::Response::error(id, e), None);
            }
        };
        let response = match result {
            Ok(mut r) => {
                if era == Era::Modern
                    && let Some(obj) = r.as_object_mut()
                {
                    obj.insert("resultType".into(), json!("complete"));
                    obj.entry("_meta")
                        .or_insert_with(|| json!({ META_SERVER: server_info() }));
                }
                rpc::Response::result(id, r)
            }
            Err(e) => rpc::Response::error(id, e),
        };
        json_response(StatusCode::OK, &response, session.as_deref())
    }

    /// Legacy unless the request carries a modern `_meta` version or header; a modern request's
    /// headers must match its body.
    fn era(&self, method: &str, params: &Value) -> Result<Era, ErrorObject> {
        let h = &self.parts.headers;
        let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let meta_version = params
            .get("_meta")
            .and_then(|m| m.get(META_VERSION))
            .and_then(Value::as_str);
        let header_version = header("mcp-protocol-version");
        let Some(version) = meta_version.or(header_version.filter(|v| *v == MODERN_VERSION)) else {
            return match header_version {
                Some(v) if !LEGACY_VERSIONS.contains(&v) && v != "2025-03-26" => {
                    Err(unsupported(v))
                }
                _ => Ok(Era::Legacy),
            };
        };
        if version != MODERN_VERSION {
            return Err(unsupported(version));
        }
        let mismatch = |what: String| {
            ErrorObject::new(rpc::HEADER_MISMATCH, format!("Header mismatch: {what}"))
        };
        if meta_version != Some(version) || header_version != Some(version) {
            return Err(mismatch(format!(
                "MCP-Protocol-Version {header_version:?} and _meta version {meta_version:?} must both be {version}"
            )));
        }
        if header("mcp-method") != Some(method) {
            return Err(mismatch(format!("Mcp-Method must be `{method}`")));
        }
        if method == "tools/call" {
            let name = params.get("name").and_then(Value::as_str);
            let sent = header("mcp-name").map(decode_sentinel);
            if name.is_none() || sent.as_deref() != name {
                return Err(mismatch("Mcp-Name must be the tool's name".into()));
            }
        }
        Ok(Era::Modern)
    }

    fn catalogue<'m>(
        &'m self,
        meta: Option<&'m crate::policy::metadata::Metadata>,
    ) -> Catalogue<'m> {
        Catalogue {
            policy: &self.tenant.0.config.policy,
            metadata: meta,
            page_cap: DEFAULT_PAGE_CAP,
        }
    }

    fn initialize(&self, params: &Value) -> Value {
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = asked
            .filter(|v| LEGACY_VERSIONS.contains(v))
            .unwrap_or(LEGACY_VERSIONS[LEGACY_VERSIONS.len() - 1]);
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": server_info(),
            "instructions": self.instructions(),
        })
    }

    fn discover(&self) -> Value {
        let mut versions = vec![MODERN_VERSION];
        versions.extend(LEGACY_VERSIONS.iter().rev());
        json!({
            "supportedVersions": versions,
            "capabilities": {"tools": {}},
            "instructions": self.instructions(),
            "ttlMs": 60_000,
            "cacheScope": "private",
        })
    }

    fn instructions(&self) -> String {
        format!(
            "Dataverse tenant `{}` through a policy gateway: only the tables, verbs and columns \
             its allowlist grants are usable; a refused call says why.",
            self.tenant.0.config.name
        )
    }

    fn tools_list(&self, era: Era) -> Value {
        let meta = self.tenant.0.metadata();
        let tools = self.catalogue(meta.as_deref()).tools();
        let mut out = json!({ "tools": tools });
        if era == Era::Modern {
            out["ttlMs"] = json!(60_000);
            out["cacheScope"] = json!("private");
        }
        out
    }

    /// `mcp_tool_calls`: the tool label is a listed tool's name or `unknown` (bounded by the
    /// config, whatever the agent sends).
    fn count_call(&self, params: &Value, result: &Result<Outcome, ErrorObject>) {
        let name = params.get("name").and_then(Value::as_str).unwrap_or("");
        let meta = self.tenant.0.metadata();
        let listed = self.catalogue(meta.as_deref()).lists(name);
        let outcome = match result {
            Err(_) => "invalid_params",
            Ok(o) if o.is_error => "tool_error",
            Ok(_) => "ok",
        };
        let labels = crate::telemetry::metrics::McpCallLabels {
            tenant: self.tenant.0.config.name.clone(),
            tool: if listed {
                name.to_string()
            } else {
                "unknown".into()
            },
            result: outcome,
        };
        self.gateway
            .metrics
            .mcp_tool_calls
            .get_or_create(&labels)
            .inc();
    }

    async fn tools_call(&self, params: &Value) -> Result<Outcome, ErrorObject> {
        let invalid = |m: String| ErrorObject::new(rpc::INVALID_PARAMS, m);
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("`name` (the tool) is required".into()))?;
        let empty = Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Err(invalid("`arguments` must be an object".into())),
        };
        let meta = self.tenant.0.metadata();
        let cat = self.catalogue(meta.as_deref());
        if !cat.lists(name) {
            return Err(invalid(format!("unknown tool `{name}`")));
        }
        let plan = match plan::plan(&cat, name, args) {
            Ok(p) => p,
            Err(PlanError::Arg(e)) => {
                return Err(invalid(e.to_string()).with_data(json!({"argument": e.arg})));
            }
            Err(PlanError::UnknownTool(t)) => return Err(invalid(format!("unknown tool `{t}`"))),
            Err(PlanError::Refused(reason)) => {
                return Ok(Outcome::error("GatewayPolicyDenied", reason, Some(403)));
            }
        };
        let caller = Caller {
            gateway: Arc::clone(&self.gateway),
            tenant: Arc::clone(&self.tenant.0),
            prefix: self.tenant.1.clone(),
            headers: forwarded_headers(&self.parts.headers),
            client: self.client.clone(),
            tool: McpTool(Arc::from(name)),
        };
        let _ = self.snapshot;
        let outcome = match plan {
            Plan::Local(v) => Outcome::ok(&v),
            Plan::Call(call) => caller.call(&call).await,
            Plan::Query(call, paging, table) => caller.page(&call, paging, &table).await,
            Plan::Continue(cursor, page_size) => {
                caller.resume(&cursor, page_size).await.map_err(|m| {
                    invalid(format!("argument `cursor`: {m}"))
                        .with_data(json!({"argument": "cursor"}))
                })?
            }
        };
        Ok(outcome)
    }
}

/// The headers a built request keeps from the MCP request: the caller's credentials and the
/// Host it addressed (routing and rewritten URLs depend on it). Nothing else is passed on.
fn forwarded_headers(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::HOST] {
        for v in h.get_all(&name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

fn unsupported(requested: &str) -> ErrorObject {
    let mut supported = vec![MODERN_VERSION];
    supported.extend(LEGACY_VERSIONS.iter().rev());
    ErrorObject::new(
        rpc::UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
    )
    .with_data(json!({"supported": supported, "requested": requested}))
}

/// `=?base64?...?=` header values decoded (the 2026-07-28 value encoding).
fn decode_sentinel(v: &str) -> String {
    use base64::Engine;
    v.strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| v.to_string())
}

fn server_info() -> Value {
    json!({"name": "dataverse-gateway", "version": env!("CARGO_PKG_VERSION")})
}

fn json_response(
    status: StatusCode,
    message: &rpc::Response,
    session: Option<&str>,
) -> Response<BoxBody> {
    let bytes = Bytes::from(serde_json::to_vec(message).unwrap_or_default());
    let mut r = Response::new(body::full(bytes));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(id) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        h.insert(SESSION_ID.clone(), id);
    }
    let _ = &PROTOCOL_VERSION;
    r
}
