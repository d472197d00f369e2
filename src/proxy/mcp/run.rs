//! Runs a planned tool call: each Web API request is built as an `http::Request` and handed to
//! [`Gateway::handle_agent`], the pipeline every agent request follows (in-process, no socket),
//! with the agent's own `Authorization` and `Host`, so the same client is authenticated, the
//! same tenant routed, and the classifier decides it. The answer becomes a tool result.
//!
//! Results: rows and records as JSON (`structuredContent`, and the same JSON as text); a
//! refusal or a Dataverse error is a result with `isError: true` carrying the error's code and
//! message (a policy denial's message is the Web API's reason). A response body over
//! the configured `mcp.max_result_bytes` is not returned: the agent is told to ask for less.

use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::cursor::{self, Cursor};
use super::plan::{Paging, WebCall};
use crate::proxy::agent_body::{AgentBody, McpTool};
use crate::proxy::body::BoxBody;
use crate::proxy::gateway::{Gateway, TenantRuntime};

/// Who is calling and where: what every request of one tool call shares.
pub struct Caller {
    pub gateway: Arc<Gateway>,
    pub tenant: Arc<TenantRuntime>,
    /// `/{tenant}` when the MCP URL named the tenant, else empty (Host or default routing).
    pub prefix: String,
    /// The agent's `Authorization` and `Host` headers, passed on unchanged.
    pub headers: HeaderMap,
    pub client: Option<String>,
    pub tool: McpTool,
    /// Largest Web API response body one request of the call returns (`mcp.max_result_bytes`).
    pub result_cap: usize,
}

/// A tool result: its `structuredContent`, already serialised, and whether it is an error.
pub struct Outcome {
    pub json: Box<RawValue>,
    pub is_error: bool,
}

#[derive(Serialize)]
struct ToolError<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    status: Option<u16>,
}

/// A page of rows: the rows are Dataverse's JSON as it came, never parsed into a tree.
#[derive(Serialize)]
struct Rows<'a> {
    count: usize,
    rows: &'a [&'a RawValue],
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow, default)]
    value: Vec<&'a RawValue>,
    #[serde(rename = "@odata.nextLink", default)]
    next: Option<String>,
}

/// `CallToolResult`: the JSON as text (for clients without structured content) and as
/// `structuredContent`.
#[derive(Serialize)]
struct CallToolResult<'a> {
    content: [TextContent<'a>; 1],
    #[serde(rename = "structuredContent")]
    structured: &'a RawValue,
    #[serde(rename = "isError")]
    is_error: bool,
    #[serde(rename = "resultType", skip_serializing_if = "Option::is_none")]
    result_type: Option<&'static str>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    meta: Option<Value>,
}

/// A JSON-RPC response whose result is a [`CallToolResult`].
#[derive(Serialize)]
struct ToolResponse<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: CallToolResult<'a>,
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

fn raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| {
        // Serialising our own types cannot fail; an empty object is the safe answer if it did.
        RawValue::from_string("{}".into()).unwrap_or_default()
    })
}

impl Outcome {
    pub fn ok(value: &Value) -> Outcome {
        Outcome {
            json: raw(value),
            is_error: false,
        }
    }

    pub fn error(code: &str, message: impl Into<String>, status: Option<u16>) -> Outcome {
        let message = message.into();
        let body = ErrorBody {
            code,
            message: &message,
            status,
        };
        Outcome {
            json: raw(&ToolError { error: body }),
            is_error: true,
        }
    }

    /// The JSON-RPC response carrying this `CallToolResult`, serialised in one pass (the result
    /// is written straight into the message, never into an intermediate buffer); `meta` (the
    /// server's identity) marks a 2026-07-28 answer, which also carries `resultType`.
    pub fn into_response(self, id: &Value, meta: Option<Value>) -> Vec<u8> {
        let message = ToolResponse {
            jsonrpc: "2.0",
            id,
            result: CallToolResult {
                content: [TextContent {
                    kind: "text",
                    text: self.json.get(),
                }],
                structured: &self.json,
                is_error: self.is_error,
                result_type: meta.is_some().then_some("complete"),
                meta,
            },
        };
        let mut out = Vec::with_capacity(self.json.get().len() * 2 + 256);
        // Serialising our own types into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &message);
        out
    }
}

impl Caller {
    fn scope(&self) -> String {
        format!(
            "{}\0{}",
            self.tenant.config.name,
            self.client.as_deref().unwrap_or("")
        )
    }

    /// Sends one request through the pipeline; the status, headers and (capped) body.
    pub(super) async fn send(
        &self,
        call: &WebCall,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Outcome> {
        let dv = &self.tenant.config.dataverse;
        let uri = format!(
            "{}/api/data/{}/{}",
            self.prefix, dv.api_version, call.target
        );
        let body = call.body_bytes();
        let mut req = Request::new(AgentBody::built(body.clone()));
        *req.method_mut() = call.method.clone();
        *req.uri_mut() = uri.parse().map_err(|_| {
            Outcome::error("GatewayBadRequest", "the arguments make no valid URL", None)
        })?;
        let mut h = call.headers(body.len());
        for (name, value) in &self.headers {
            h.append(name, value.clone());
        }
        *req.headers_mut() = h;
        req.extensions_mut().insert(self.tool.clone());
        let response: Response<BoxBody> = Arc::clone(&self.gateway).handle_agent(req, None).await;
        let (parts, body) = response.into_parts();
        let cap = self.result_cap;
        let bytes = match Limited::new(body, cap).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(Outcome::error(
                    "GatewayResultTooLarge",
                    format!(
                        "the result is over {cap} bytes: select fewer columns or use a smaller page_size"
                    ),
                    Some(parts.status.as_u16()),
                ));
            }
            Err(_) => {
                return Err(Outcome::error(
                    "GatewayUpstreamTruncated",
                    "the response broke off",
                    Some(parts.status.as_u16()),
                ));
            }
        };
        if !parts.status.is_success() {
            return Err(failure(parts.status, &bytes));
        }
        Ok((parts.status, parts.headers, bytes))
    }

    /// A single request's result.
    pub async fn call(&self, call: &WebCall) -> Outcome {
        let (status, headers, body) = match self.send(call).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(&body) {
            m.retain(|k, _| !k.starts_with("@odata.context"));
            return Outcome::ok(&Value::Object(m));
        }
        let entity = headers
            .get("odata-entityid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let id = entity.as_deref().and_then(id_of);
        let mut out = Map::new();
        out.insert("status".into(), json!(status.as_u16()));
        if call.method == Method::POST && id.is_some() {
            out.insert("id".into(), json!(id));
        }
        if let Some(e) = entity {
            out.insert("entity".into(), json!(e));
        }
        Outcome::ok(&Value::Object(out))
    }

    /// One page of a query, with a cursor when more rows are owed.
    pub async fn page(&self, call: &WebCall, paging: Paging, table: &str) -> Outcome {
        let (_, _, body) = match self.send(call).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        let Ok(page) = serde_json::from_slice::<Page<'_>>(&body) else {
            return Outcome::error(
                "GatewayUpstreamInvalid",
                "Dataverse sent no page of rows",
                None,
            );
        };
        let mut rows = page.value;
        let remaining = paging.remaining.map(|r| {
            rows.truncate(usize::try_from(r).unwrap_or(usize::MAX));
            r - rows.len() as u64
        });
        let api = format!("/api/data/{}/", self.tenant.config.dataverse.api_version);
        let next = page
            .next
            .as_deref()
            .and_then(|link| link.split_once(&api).map(|(_, rest)| rest.to_string()))
            .filter(|_| remaining != Some(0));
        let cursor = next.map(|next| {
            let c = Cursor {
                table: table.to_string(),
                next,
                remaining,
                page_size: paging.page_size,
            };
            cursor::seal(&cursor::key(&self.tenant.config), &self.scope(), &c)
        });
        let out = Rows {
            count: rows.len(),
            rows: &rows,
            cursor,
        };
        Outcome {
            json: raw(&out),
            is_error: false,
        }
    }

    /// Continues a query from its cursor (`page_size` may be changed, within the cap).
    pub async fn resume(
        &self,
        text: &str,
        page_size: Option<u32>,
    ) -> Result<Outcome, &'static str> {
        let key = cursor::key(&self.tenant.config);
        let c = cursor::open(&key, &self.scope(), text)
            .ok_or("the cursor is not one this gateway issued to this client and tenant")?;
        // A continuation reads the table the query read, nothing else: its path is the table.
        let path = c.next.split_once('?').map_or(c.next.as_str(), |(p, _)| p);
        if path != c.table || c.next.contains('#') {
            return Err("the cursor does not continue a query of one table");
        }
        let paging = Paging {
            page_size: page_size.unwrap_or(c.page_size),
            remaining: c.remaining,
        };
        let call = WebCall {
            method: Method::GET,
            target: c.next,
            body: None,
            page_size: Some(paging.page_size),
            existing_only: false,
        };
        Ok(self.page(&call, paging, &c.table).await)
    }
}

/// A refused or failed request as a tool error: the Web API error's code and message.
fn failure(status: StatusCode, body: &[u8]) -> Outcome {
    let parsed: Option<(String, String)> =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str().unwrap_or_default().to_string(),
                e.get("message")?.as_str().unwrap_or_default().to_string(),
            ))
        });
    let (code, message) = parsed.unwrap_or_else(|| {
        (
            format!("HTTP{}", status.as_u16()),
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        )
    });
    Outcome::error(&code, message, Some(status.as_u16()))
}

/// The GUID at the end of an `OData-EntityId` (`.../contacts(GUID)`).
fn id_of(entity: &str) -> Option<String> {
    let inner = entity.strip_suffix(')')?.rsplit_once('(')?.1;
    super::plan::is_guid(inner).then(|| inner.to_string())
}
