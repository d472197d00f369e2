//! One MCP message: the era it is spoken in (handshake or 2026-07-28, whose headers must match
//! the body), and the answer to each method. Tool calls are planned ([`super::plan`]) and run
//! ([`super::run`]) through the pipeline.

use std::sync::Arc;

use http::header::{self, HeaderMap};
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::plan::{self, Plan, PlanError};
use super::rpc::{self, ErrorObject, Message};
use super::run::{Caller, Outcome};
use super::tools::Catalogue;
use super::{Admitted, LEGACY_VERSIONS, MODERN_VERSION, json_bytes, json_response};
use crate::config::mcp::McpSettings;
use crate::proxy::agent_body::McpTool;
use crate::proxy::body::{self, BoxBody};
use crate::proxy::gateway::Gateway;

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_SERVER: &str = "io.modelcontextprotocol/serverInfo";

pub(super) struct Mcp<'a> {
    pub settings: McpSettings,
    pub gateway: Arc<Gateway>,
    pub who: Admitted,
    pub parts: &'a http::request::Parts,
}

/// How one request is spoken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Era {
    Legacy,
    Modern,
}

impl Mcp<'_> {
    pub(super) async fn answer(&self, bytes: &[u8]) -> Response<BoxBody> {
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
                return match r {
                    Ok(outcome) => {
                        let meta =
                            (era == Era::Modern).then(|| json!({ META_SERVER: server_info() }));
                        json_bytes(StatusCode::OK, outcome.into_response(&id, meta))
                    }
                    Err(e) => json_response(StatusCode::OK, &rpc::Response::error(id, e), None),
                };
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
            policy: self.who.policy(),
            metadata: meta,
            page_cap: self.settings.max_page_size,
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
            self.who.tenant.config.name
        )
    }

    fn tools_list(&self, era: Era) -> Value {
        let meta = self.who.tenant.metadata();
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
        let meta = self.who.tenant.metadata();
        let listed = self.catalogue(meta.as_deref()).lists(name);
        let outcome = match result {
            Err(_) => "invalid_params",
            Ok(o) if o.is_error => "tool_error",
            Ok(_) => "ok",
        };
        let labels = crate::telemetry::metrics::McpCallLabels {
            tenant: self.who.tenant.config.name.clone(),
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
        let meta = self.who.tenant.metadata();
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
            tenant: Arc::clone(&self.who.tenant),
            prefix: self.who.prefix.clone(),
            headers: forwarded_headers(&self.parts.headers),
            client: self.who.client.clone(),
            tool: McpTool(Arc::from(name)),
            result_cap: usize::try_from(self.settings.max_result_bytes).unwrap_or(usize::MAX),
        };
        let outcome = match plan {
            Plan::Described(d) => caller.labelled(d).await,
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
