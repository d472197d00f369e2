//! JSON-RPC 2.0 messages as MCP's Streamable HTTP transport carries them (serde types; no JSON
//! is written by hand).
//!
//! One POST body holds one message. Revisions 2025-06-18 and later have no batches, so an array
//! is refused as an invalid request; a body that is not JSON is a parse error.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// 2026-07-28: the HTTP headers do not match the body, or a required one is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not served.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A message from the client, as far as the transport needs to tell them apart.
#[derive(Debug, Deserialize)]
pub struct Incoming {
    pub jsonrpc: Option<String>,
    /// Present on requests (and on responses the client sends back, which have no method).
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub params: Option<Value>,
}

/// What one POST carried.
#[derive(Debug)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A notification, or a response to a server request: answered 202 with no body.
    Accepted,
}

/// Why a body is not one JSON-RPC message.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all.
    Parse(String),
    /// JSON, but not one request or notification.
    Invalid(String),
}

impl Malformed {
    pub fn error(&self) -> ErrorObject {
        match self {
            Malformed::Parse(m) => ErrorObject::new(PARSE_ERROR, m.clone()),
            Malformed::Invalid(m) => ErrorObject::new(INVALID_REQUEST, m.clone()),
        }
    }
}

/// Reads one POST body (straight into [`Incoming`]: no JSON tree of the whole message).
pub fn parse(body: &[u8]) -> Result<Message, Malformed> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(Malformed::Invalid(
                "JSON-RPC batches are not part of MCP since revision 2025-06-18: send one message per POST"
                    .into(),
            )),
            Err(e) => Err(Malformed::Parse(format!("the body is not JSON: {e}"))),
        };
    }
    let msg: Incoming = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            Malformed::Invalid(format!("not a JSON-RPC message: {e}"))
        }
        _ => Malformed::Parse(format!("the body is not JSON: {e}")),
    })?;
    if msg.jsonrpc.as_deref() != Some("2.0") {
        return Err(Malformed::Invalid("`jsonrpc` must be \"2.0\"".into()));
    }
    match (msg.id, msg.method) {
        (Some(id), Some(method)) if id.is_string() || id.is_number() => Ok(Message::Request {
            id,
            method,
            params: msg.params.unwrap_or(Value::Null),
        }),
        (Some(_), Some(_)) => Err(Malformed::Invalid(
            "a request `id` must be a string or a number".into(),
        )),
        (None, Some(_)) => Ok(Message::Accepted),
        (Some(_), None) => Ok(Message::Accepted),
        (None, None) => Err(Malformed::Invalid(
            "a message needs a `method` (request, notification) or an `id` (response)".into(),
        )),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i64, message: impl Into<String>) -> ErrorObject {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> ErrorObject {
        self.data = Some(data);
        self
    }
}

/// The server's answer to one request.
#[derive(Debug, Serialize)]
pub struct Response {
    pub jsonrpc: &'static str,
    /// `null` when the request's id could not be read.
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

impl Response {
    pub fn result(id: Value, result: Value) -> Response {
        match serde_json::value::to_raw_value(&result) {
            Ok(raw) => Response::raw(id, raw),
            Err(e) => Response::error(id, ErrorObject::new(INTERNAL_ERROR, e.to_string())),
        }
    }

    /// A result already serialised (tool results: rows are passed through, never re-parsed).
    pub fn raw(id: Value, result: Box<RawValue>) -> Response {
        Response {
            jsonrpc: "2.0",
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn error(id: Value, error: ErrorObject) -> Response {
        Response {
            jsonrpc: "2.0",
            id,
            result: None,
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let m = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert!(matches!(m, Message::Request { ref method, .. } if method == "tools/list"));
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(n, Message::Accepted));
        let r = parse(br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#).unwrap();
        assert!(matches!(r, Message::Accepted));
    }

    #[test]
    fn malformed_bodies_are_parse_or_invalid_request_errors() {
        assert!(matches!(parse(b"{nope"), Err(Malformed::Parse(_))));
        let batch = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert!(matches!(batch, Err(Malformed::Invalid(ref m)) if m.contains("batches")));
        assert!(matches!(
            parse(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            Err(Malformed::Invalid(_))
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#),
            Err(Malformed::Invalid(_))
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0"}"#),
            Err(Malformed::Invalid(_))
        ));
    }
}
