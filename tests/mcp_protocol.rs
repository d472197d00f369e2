//! The MCP front door's transport: the handshake revisions (2025-06-18, 2025-11-25) and the
//! stateless 2026-07-28 revision, notifications, errors, and stateless sessions across replicas.

mod common;

use std::sync::Arc;

use common::mcp::{MODERN, McpClient};
use common::*;
use dataverse_gateway::clock::Clock;
use dataverse_gateway::identity::clients::key_sha256_hex;
use dataverse_gateway::sim::SimConfig;
use serde_json::{Value, json};

async fn mcp() -> (Harness, McpClient) {
    let h = Harness::start().await;
    let c = McpClient::new(format!("{}/contoso/mcp", h.url));
    (h, c)
}

#[tokio::test]
async fn initialize_negotiates_each_handshake_revision_and_mints_a_session_id() {
    let (_h, c) = mcp().await;
    for (asked, got) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let params = json!({"protocolVersion": asked, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
        let a = c.legacy(1, "initialize", params).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let r = &a.body["result"];
        assert_eq!(r["protocolVersion"], got, "{}", a.body);
        assert_eq!(r["serverInfo"]["name"], "dataverse-gateway");
        assert!(r["capabilities"]["tools"].is_object());
        assert!(
            a.session.is_some_and(|s| s.len() >= 32),
            "a session id is minted"
        );
    }
}

#[tokio::test]
async fn notifications_and_client_responses_are_accepted_with_202_and_no_body() {
    let (_h, c) = mcp().await;
    for msg in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}}),
        json!({"jsonrpc": "2.0", "id": "s-1", "result": {}}),
    ] {
        let a = c.post_raw(serde_json::to_vec(&msg).unwrap(), &[]).await;
        assert_eq!((a.status, &a.body), (202, &Value::Null), "{msg}");
    }
}

#[tokio::test]
async fn tools_list_needs_no_session_in_either_era() {
    let (_h, c) = mcp().await;
    let legacy = c.legacy(2, "tools/list", json!({})).await;
    assert_eq!(legacy.status, 200);
    assert!(legacy.body["result"].get("resultType").is_none());
    let modern = c.modern(2, "tools/list", json!({})).await;
    assert_eq!(modern.status, 200, "{}", modern.body);
    let r = &modern.body["result"];
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["cacheScope"], "private");
    assert!(r["ttlMs"].is_number());
    assert_eq!(r["tools"], legacy.body["result"]["tools"]);
    let names: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "list_tables",
            "describe_table",
            "query",
            "fetch_xml",
            "get",
            "create",
            "update",
            "delete",
            "WhoAmI"
        ]
    );
}

#[tokio::test]
async fn server_discover_names_every_revision_served() {
    let (_h, c) = mcp().await;
    let a = c.modern(1, "server/discover", json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let r = &a.body["result"];
    assert_eq!(
        r["supportedVersions"],
        json!([MODERN, "2025-11-25", "2025-06-18"])
    );
    assert_eq!(r["resultType"], "complete");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "dataverse-gateway"
    );
}

#[tokio::test]
async fn unknown_methods_are_method_not_found_404_when_modern() {
    let (_h, c) = mcp().await;
    let a = c.modern(5, "resources/list", json!({})).await;
    assert_eq!((a.status, &a.body["error"]["code"]), (404, &json!(-32601)));
    assert_eq!(a.body["id"], 5);
    let a = c.legacy(6, "prompts/list", json!({})).await;
    assert_eq!((a.status, &a.body["error"]["code"]), (200, &json!(-32601)));
    // `ping` is gone in 2026-07-28, still served to the handshake era.
    assert_eq!(c.modern(7, "ping", json!({})).await.status, 404);
    assert_eq!(
        c.legacy(8, "ping", json!({})).await.body["result"],
        json!({})
    );
}

#[tokio::test]
async fn malformed_json_and_batches_are_refused_with_their_json_rpc_codes() {
    let (_h, c) = mcp().await;
    let a = c
        .post_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 1,".to_vec(), &[])
        .await;
    assert_eq!(
        (a.status, &a.body["error"]["code"], &a.body["id"]),
        (400, &json!(-32700), &Value::Null)
    );
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]);
    let a = c.post_raw(serde_json::to_vec(&batch).unwrap(), &[]).await;
    assert_eq!((a.status, &a.body["error"]["code"]), (400, &json!(-32600)));
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches")
    );
}

#[tokio::test]
async fn modern_headers_must_match_the_body_and_the_version_must_be_served() {
    let (_h, c) = mcp().await;
    let call = |version: &str, method_header: &str, name: &str| {
        let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "WhoAmI", "arguments": {},
            "_meta": {"io.modelcontextprotocol/protocolVersion": version}}});
        (
            serde_json::to_vec(&msg).unwrap(),
            version.to_string(),
            method_header.to_string(),
            name.to_string(),
        )
    };
    for (body, v, m, n) in [
        call(MODERN, "tools/list", "WhoAmI"),
        call(MODERN, "tools/call", "query"),
    ] {
        let a = c
            .post_raw(
                body,
                &[
                    ("mcp-protocol-version", &v),
                    ("mcp-method", &m),
                    ("mcp-name", &n),
                ],
            )
            .await;
        assert_eq!(
            (a.status, &a.body["error"]["code"]),
            (400, &json!(-32020)),
            "{}",
            a.body
        );
    }
    let (body, ..) = call(MODERN, "tools/call", "WhoAmI");
    let a = c
        .post_raw(
            body,
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "WhoAmI"),
            ],
        )
        .await;
    assert_eq!(a.body["error"]["code"], -32020, "header and _meta disagree");
    let (body, ..) = call("2030-01-01", "tools/call", "WhoAmI");
    let a = c
        .post_raw(
            body,
            &[
                ("mcp-protocol-version", "2030-01-01"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "WhoAmI"),
            ],
        )
        .await;
    assert_eq!((a.status, &a.body["error"]["code"]), (400, &json!(-32022)));
    assert_eq!(a.body["error"]["data"]["requested"], "2030-01-01");
    // The base64 sentinel form of Mcp-Name is decoded before comparing.
    let (body, ..) = call(MODERN, "tools/call", "WhoAmI");
    let a = c
        .post_raw(
            body,
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?V2hvQW1J?="),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn get_and_delete_are_405_and_a_foreign_origin_is_403() {
    let (h, c) = mcp().await;
    for m in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = h.http.request(m, &c.url).send().await.unwrap();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "POST");
        assert_eq!(r.headers()["x-request-id"].len(), 36, "a fresh request id");
    }
    // Like every answer of the gateway, the endpoint's carry the agent's request id.
    let r = h
        .http
        .get(&c.url)
        .header("x-ms-client-request-id", "agent-id-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "agent-id-7");
    let a = c
        .post_raw(b"{}".to_vec(), &[("origin", "http://evil.example")])
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(h.sim.requests().len(), 0);
}

#[tokio::test]
async fn mcp_at_the_root_serves_the_default_tenant_and_unknown_tenants_are_404() {
    let (h, _) = mcp().await;
    let root = McpClient::new(format!("{}/mcp", h.url));
    assert!(root.tool_names().await.contains(&"query".to_string()));
    let nowhere = McpClient::new(format!("{}/nowhere/mcp", h.url));
    assert_eq!(nowhere.modern(1, "tools/list", json!({})).await.status, 404);
}

const KEY: &str = "mcp-agent-key-8d2e";

#[tokio::test]
async fn client_keys_gate_the_mcp_endpoint_as_they_gate_the_web_api() {
    let h = Harness::build(SimConfig::default(), |sim| {
        format!(
            "clients:\n  - name: agent\n    key_sha256: {}\n    tenants: [contoso]\ntenants:\n{}{}",
            key_sha256_hex(KEY),
            tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY),
            tenant_yaml("fabrikam", false, sim, 0, &default_secret(), DEFAULT_POLICY),
        )
    })
    .await;
    let mut c = McpClient::new(format!("{}/contoso/mcp", h.url));
    let a = c.modern(1, "tools/list", json!({})).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (401, Some("GatewayUnauthorized"))
    );
    c.auth = Some(format!("Bearer {KEY}"));
    let who = c.call("WhoAmI", json!({})).await;
    assert_eq!(who["isError"], false, "{who}");
    let mut other = McpClient::new(format!("{}/fabrikam/mcp", h.url));
    other.auth = c.auth.clone();
    let a = other.modern(1, "tools/list", json!({})).await;
    assert_eq!(a.status, 403, "a key for contoso only");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not use tenant fabrikam")
    );
}

#[tokio::test]
async fn two_gateways_serve_one_sessions_calls_alternately() {
    let h = Harness::start().await;
    let yaml = format!(
        "tenants:\n{}",
        tenant_yaml(
            "contoso",
            true,
            &h.sim,
            0,
            &default_secret(),
            DEFAULT_POLICY
        )
    );
    let second = serve(&yaml, Arc::clone(&h.clock) as Arc<dyn Clock>).await;
    let a = McpClient::new(format!("{}/contoso/mcp", h.url));
    let b = McpClient::new(format!("{}/contoso/mcp", second.url()));
    let init = json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
    let session = a
        .legacy(1, "initialize", init)
        .await
        .session
        .expect("session id");
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..10 {
        let gw = if page % 2 == 0 { &a } else { &b };
        let mut args = json!({"table": "contacts", "select": ["fullname"], "page_size": 3});
        if let Some(c) = &cursor {
            args = json!({"cursor": c});
        }
        let msg = json!({"jsonrpc": "2.0", "id": 10 + page, "method": "tools/call", "params": {"name": "query", "arguments": args}});
        let r = gw
            .post_raw(
                serde_json::to_vec(&msg).unwrap(),
                &[
                    ("mcp-session-id", &session),
                    ("mcp-protocol-version", "2025-11-25"),
                ],
            )
            .await;
        let result = &r.body["result"]["structuredContent"];
        assert_eq!(r.body["result"]["isError"], false, "{}", r.body);
        for row in result["rows"].as_array().unwrap() {
            ids.push(row["contactid"].as_str().unwrap().to_string());
        }
        cursor = result["cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    let all = h
        .get("contacts?$select=fullname")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let want: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["contactid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, want, "every row once, in order, across both gateways");
    assert!(want.len() > 3, "more than one page");
}
