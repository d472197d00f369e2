//! The MCP front door's tools against the simulator: what each call sends to Dataverse (through
//! the unchanged pipeline), refusals with the Web API's reason, argument errors naming the
//! argument, Dataverse errors with their code, and the audit record of each request.

mod common;

use std::sync::Arc;

use common::mcp::McpClient;
use common::*;
use dataverse_gateway::clock::Clock;
use dataverse_gateway::sim::SimConfig;
use dataverse_gateway::telemetry::metrics::McpCallLabels;
use serde_json::{Value, json};

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue]
    functions: [WhoAmI]
";

async fn start() -> (Harness, McpClient) {
    let h = Harness::with_policy(POLICY).await;
    let c = McpClient::new(format!("{}/contoso/mcp", h.url));
    (h, c)
}

fn content(result: &Value) -> &Value {
    &result["structuredContent"]
}

#[tokio::test]
async fn tools_follow_the_allowlist_verbs_tables_and_columns() {
    let (_h, c) = start().await;
    let list = c.modern(1, "tools/list", json!({})).await;
    let tools = list.body["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
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
            "WhoAmI"
        ],
        "no delete: no table allows DELETE"
    );
    let schema =
        |name: &str| tools.iter().find(|t| t["name"] == name).unwrap()["inputSchema"].clone();
    assert_eq!(
        schema("query")["properties"]["table"]["enum"],
        json!(["accounts", "contacts", "opportunities"])
    );
    assert_eq!(
        schema("create")["properties"]["table"]["enum"],
        json!(["contacts"])
    );
    assert_eq!(schema("query")["properties"]["page_size"]["maximum"], 50);
    let query = tools.iter().find(|t| t["name"] == "query").unwrap();
    assert!(
        query["description"]
            .as_str()
            .unwrap()
            .contains("opportunities: name, estimatedvalue")
    );
    let listed = c.call("list_tables", json!({})).await;
    let tables = &content(&listed)["tables"];
    assert_eq!(tables.as_array().unwrap().len(), 3);
    assert_eq!(tables[2]["columns"], json!(["name", "estimatedvalue"]));
    let described = c
        .call("describe_table", json!({"table": "opportunities"}))
        .await;
    let columns: Vec<&Value> = content(&described)["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(columns, [&json!("estimatedvalue"), &json!("name")]);
    let contacts = c.call("describe_table", json!({"table": "contacts"})).await;
    let lookups = content(&contacts)["lookups"].as_array().unwrap().clone();
    assert!(
        lookups.iter().any(|l| l["target_table"] == "accounts"),
        "{lookups:?}"
    );
    assert!(lookups.iter().all(|l| {
        ["accounts", "contacts", "opportunities"].contains(&l["target_table"].as_str().unwrap())
    }));
}

#[tokio::test]
async fn query_builds_the_web_api_get_and_top_spans_pages() {
    let (h, c) = start().await;
    let args = json!({"table": "contacts", "select": ["fullname", "emailaddress1"],
        "filter": "lastname ne 'x'", "orderby": "fullname desc", "top": 5, "page_size": 2});
    let mut r = c.call("query", args).await;
    let mut rows = Vec::new();
    loop {
        assert_eq!(r["isError"], false, "{r}");
        rows.extend(content(&r)["rows"].as_array().unwrap().clone());
        let Some(cursor) = content(&r)["cursor"].as_str().map(str::to_string) else {
            break;
        };
        r = c.call("query", json!({"cursor": cursor})).await;
    }
    assert_eq!(rows.len(), 5, "top counts rows over every page");
    let first = &h.upstream_requests()[0];
    assert_eq!(first.method, "GET");
    assert!(first.uri.starts_with("/api/data/v9.2/contacts?$select=fullname%2Cemailaddress1&$filter=lastname%20ne%20%27x%27&$orderby=fullname%20desc"), "{}", first.uri);
    assert_eq!(first.headers["prefer"], "odata.maxpagesize=2");
    // The same rows as the Web API gives when its nextLinks are followed.
    let mut web = Vec::new();
    let mut next = Some(h.api(
        "contacts?$select=fullname,emailaddress1&$filter=lastname ne 'x'&$orderby=fullname desc",
    ));
    while let Some(url) = next.take() {
        let page: Value = h
            .http
            .get(url)
            .header("prefer", "odata.maxpagesize=2")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        web.extend(page["value"].as_array().unwrap().clone());
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    web.truncate(5);
    assert_eq!(rows, web);
}

#[tokio::test]
async fn a_tampered_or_foreign_cursor_is_an_invalid_argument() {
    let (_h, c) = start().await;
    let r = c
        .call("query", json!({"table": "contacts", "page_size": 1}))
        .await;
    let cursor = content(&r)["cursor"].as_str().unwrap().to_string();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] ^= 1;
    let a = c
        .modern(
            2,
            "tools/call",
            json!({"name": "query", "arguments": {"cursor": String::from_utf8(tampered).unwrap()}}),
        )
        .await;
    assert_eq!(
        (
            a.body["error"]["code"].clone(),
            a.body["error"]["data"]["argument"].clone()
        ),
        (json!(-32602), json!("cursor"))
    );
}

#[tokio::test]
async fn writes_and_functions_reach_dataverse_as_web_api_requests() {
    let (h, c) = start().await;
    let created = c
        .call(
            "create",
            json!({"table": "contacts", "record": {"firstname": "Ada", "lastname": "Byron"}}),
        )
        .await;
    assert_eq!(created["isError"], false, "{created}");
    let id = content(&created)["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let updated = c
        .call(
            "update",
            json!({"table": "contacts", "id": id, "record": {"lastname": "Lovelace"}}),
        )
        .await;
    assert_eq!(updated["isError"], false, "{updated}");
    let got = c
        .call(
            "get",
            json!({"table": "contacts", "id": id, "select": ["lastname"]}),
        )
        .await;
    assert_eq!(content(&got)["lastname"], "Lovelace");
    let who = c.call("WhoAmI", json!({})).await;
    assert_eq!(content(&who)["UserId"], h.sim.app_user_id(0));
    let sent: Vec<(String, String)> = h
        .upstream_requests()
        .iter()
        .map(|r| (r.method.to_string(), r.uri.clone()))
        .collect();
    assert_eq!(
        sent,
        [
            ("POST".to_string(), "/api/data/v9.2/contacts".to_string()),
            ("PATCH".into(), format!("/api/data/v9.2/contacts({id})")),
            (
                "GET".into(),
                format!("/api/data/v9.2/contacts({id})?$select=lastname")
            ),
            ("GET".into(), "/api/data/v9.2/WhoAmI()".into()),
        ]
    );
    assert_eq!(
        h.upstream_requests()[1].headers["if-match"],
        "*",
        "update never creates"
    );
}

#[tokio::test]
async fn a_denied_call_is_a_tool_error_with_the_web_api_reason_and_reaches_nothing() {
    let (h, c) = start().await;
    let cases = [
        ("query", json!({"table": "leads"}), "`leads`"),
        (
            "query",
            json!({"table": "opportunities", "select": ["description"]}),
            "description",
        ),
        (
            "create",
            json!({"table": "accounts", "record": {"name": "x"}}),
            "POST",
        ),
    ];
    for (tool, args, reason) in &cases {
        let r = c.call(tool, args.clone()).await;
        assert_eq!(r["isError"], true, "{tool} {args}: {r}");
        let err = &content(&r)["error"];
        assert_eq!(
            (err["code"].as_str(), err["status"].as_u64()),
            (Some("GatewayPolicyDenied"), Some(403)),
            "{r}"
        );
        assert!(
            err["message"].as_str().unwrap().contains(reason),
            "{tool}: {err}"
        );
    }
    let reached: Vec<String> = h
        .upstream_requests()
        .iter()
        .map(|r| r.uri.clone())
        .collect();
    assert!(
        reached
            .iter()
            .all(|u| !u.contains("leads") && !u.contains("description")),
        "{reached:?}"
    );
    assert!(h.upstream_requests().iter().all(|r| r.method != "POST"));
    // The same words as the Web API's own refusal.
    let web = h.get("leads").await;
    let (_, web_reason) = error_of(web).await;
    let r = c.call("query", json!({"table": "leads"})).await;
    assert_eq!(content(&r)["error"]["message"], json!(web_reason));
}

#[tokio::test]
async fn malformed_arguments_are_invalid_params_naming_the_argument() {
    let (h, c) = start().await;
    for (tool, args, arg) in [
        (
            "query",
            json!({"table": "contacts", "page_size": 500}),
            "page_size",
        ),
        ("query", json!({"table": "contacts", "top": "ten"}), "top"),
        ("query", json!({"table": "con tacts"}), "table"),
        (
            "query",
            json!({"table": "contacts", "select": [1, 2]}),
            "select",
        ),
        (
            "get",
            json!({"table": "contacts", "id": "not-a-guid"}),
            "id",
        ),
        (
            "create",
            json!({"table": "contacts", "record": [1]}),
            "record",
        ),
        (
            "update",
            json!({"table": "contacts", "id": "00000000-0000-0000-0000-000000000001"}),
            "record",
        ),
        ("WhoAmI", json!({"extra": 1}), "extra"),
    ] {
        let a = c
            .modern(3, "tools/call", json!({"name": tool, "arguments": args}))
            .await;
        assert_eq!(a.body["error"]["code"], -32602, "{tool} {args}: {}", a.body);
        assert_eq!(a.body["error"]["data"]["argument"], arg, "{}", a.body);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{arg}`"))
        );
    }
    let a = c
        .modern(4, "tools/call", json!({"name": "delete", "arguments": {}}))
        .await;
    assert_eq!(
        a.body["error"]["code"], -32602,
        "a tool not listed is unknown: {}",
        a.body
    );
    assert!(h.upstream_requests().is_empty());
}

#[tokio::test]
async fn a_dataverse_error_is_a_tool_error_with_its_code() {
    let (_h, c) = start().await;
    let r = c
        .call(
            "get",
            json!({"table": "contacts", "id": "00000000-0000-0000-0000-00000000dead"}),
        )
        .await;
    assert_eq!(r["isError"], true, "{r}");
    let err = &content(&r)["error"];
    assert_eq!(err["status"], 404, "{r}");
    assert!(
        err["code"].as_str().unwrap().starts_with("0x"),
        "Dataverse's own code: {err}"
    );
}

#[tokio::test]
async fn every_request_a_tool_makes_is_audited_with_the_front_door_and_tool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let clock = Arc::new(dataverse_gateway::clock::ManualClock::new());
    let sim = simulator(SimConfig {
        clock: clock.clone() as Arc<dyn Clock>,
        ..SimConfig::default()
    })
    .await;
    let yaml = format!(
        "audit:\n  output: {path:?}\ntenants:\n{}",
        tenant_yaml("contoso", true, &sim, 0, &default_secret(), POLICY)
    );
    let gw = serve(&yaml, clock as Arc<dyn Clock>).await;
    let c = McpClient::new(format!("{}/contoso/mcp", gw.url()));
    c.call("WhoAmI", json!({})).await;
    c.call("query", json!({"table": "leads"})).await;
    gw.gateway.audit().unwrap().flush(DEADLINE);
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (
            &lines[0]["front_door"],
            &lines[0]["tool"],
            &lines[0]["decision"]
        ),
        (&json!("mcp"), &json!("WhoAmI"), &json!("allow"))
    );
    assert_eq!(
        (&lines[1]["tool"], &lines[1]["decision"], &lines[1]["path"]),
        (
            &json!("query"),
            &json!("deny"),
            &json!("/contoso/api/data/v9.2/leads")
        )
    );
    let calls = |tool: &str, result: &'static str| {
        let labels = McpCallLabels {
            tenant: "contoso".into(),
            tool: tool.into(),
            result,
        };
        gw.gateway
            .metrics
            .mcp_tool_calls
            .get_or_create(&labels)
            .get()
    };
    assert_eq!(
        (calls("WhoAmI", "ok"), calls("query", "tool_error")),
        (1, 1)
    );
}

#[tokio::test]
async fn a_forged_cursor_cannot_leave_its_table_and_is_still_classified() {
    use dataverse_gateway::proxy::mcp::cursor::{Cursor, key, seal};
    let (h, c) = start().await;
    // The key derives from the config, which an attacker may know: forge with it.
    let k = key(&h.gateway.snapshot().tenants[0].config);
    let forge = |table: &str, next: &str| {
        let cursor = Cursor {
            table: table.into(),
            next: next.into(),
            remaining: None,
            page_size: 5,
        };
        seal(&k, "contoso\0", &cursor)
    };
    for next in [
        "leads",
        "../../fabrikam/api/data/v9.2/contacts",
        "contacts/../leads",
    ] {
        let a = c
            .modern(
                1,
                "tools/call",
                json!({"name": "query", "arguments": {"cursor": forge("contacts", next)}}),
            )
            .await;
        assert_eq!(
            a.body["error"]["data"]["argument"], "cursor",
            "{next}: {}",
            a.body
        );
    }
    let r = c
        .call(
            "query",
            json!({"cursor": forge("leads", "leads?$select=fullname")}),
        )
        .await;
    assert_eq!(r["isError"], true, "{r}");
    assert_eq!(content(&r)["error"]["code"], "GatewayPolicyDenied");
    assert!(
        h.upstream_requests().is_empty(),
        "nothing reached Dataverse"
    );
}
