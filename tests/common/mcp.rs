//! An MCP caller over HTTP for the MCP front-door tests: one JSON-RPC message per POST, in the
//! handshake era (`legacy`) or the stateless 2026-07-28 revision (`modern`, with the `_meta`
//! version and the mirrored headers the transport requires).

use serde_json::{Value, json};

pub const MODERN: &str = "2026-07-28";

pub struct McpClient {
    pub http: reqwest::Client,
    /// The MCP endpoint, e.g. `http://127.0.0.1:PORT/contoso/mcp`.
    pub url: String,
    /// `Authorization` value, when the gateway has client keys.
    pub auth: Option<String>,
}

/// Status, `Mcp-Session-Id` and the JSON body (`Null` when there is none).
pub struct Answer {
    pub status: u16,
    pub session: Option<String>,
    pub body: Value,
}

impl McpClient {
    pub fn new(url: impl Into<String>) -> McpClient {
        McpClient {
            http: super::client(),
            url: url.into(),
            auth: None,
        }
    }

    pub async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = super::within("an MCP answer", req.send())
            .await
            .expect("MCP POST");
        let status = r.status().as_u16();
        let session = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = r.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            session,
            body,
        }
    }

    /// A handshake-era request (`MCP-Protocol-Version: 2025-11-25` unless `initialize`).
    pub async fn legacy(&self, id: u64, method: &str, params: Value) -> Answer {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let headers: &[(&str, &str)] = match method {
            "initialize" => &[],
            _ => &[("mcp-protocol-version", "2025-11-25")],
        };
        self.post_raw(serde_json::to_vec(&msg).unwrap(), headers)
            .await
    }

    /// A 2026-07-28 request: `_meta` carries the version, headers mirror it.
    pub async fn modern(&self, id: u64, method: &str, mut params: Value) -> Answer {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        let name = params["name"].as_str().map(str::to_string);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
        if let Some(n) = &name {
            headers.push(("mcp-name", n));
        }
        self.post_raw(serde_json::to_vec(&msg).unwrap(), &headers)
            .await
    }

    /// `tools/call` (modern) → its `result`, panicking on a JSON-RPC error.
    pub async fn call(&self, tool: &str, args: Value) -> Value {
        let a = self
            .modern(9, "tools/call", json!({"name": tool, "arguments": args}))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("no result: {}", a.body))
    }

    /// The names `tools/list` shows.
    pub async fn tool_names(&self) -> Vec<String> {
        let a = self.modern(1, "tools/list", json!({})).await;
        a.body["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools: {}", a.body))
            .iter()
            .map(|t| t["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
