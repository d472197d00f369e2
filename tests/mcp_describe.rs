//! `describe_table` and `list_tables` against the simulator: column types, keys and lookups from
//! the CSDL; display names, descriptions and choice values from `EntityDefinitions` requests the
//! tools make through the pipeline as the caller; columns the allowlist hides stay hidden, labels
//! included; a refused label request leaves the facts and says labels are unavailable; the
//! configured page cap.

mod common;

use common::mcp::McpClient;
use common::*;
use serde_json::{Value, json};

const POLICY: &str = "
    allow:
      contacts: [GET]
      accounts: [GET]
      opportunities:
        verbs: [GET]
        columns: [name, estimatedvalue, statuscode, _parentaccountid_value]
";

async fn start(policy: &str) -> (Harness, McpClient) {
    let h = Harness::with_policy(policy).await;
    h.wait_for_metadata().await;
    let c = McpClient::new(format!("{}/contoso/mcp", h.url));
    (h, c)
}

fn content(result: &Value) -> &Value {
    &result["structuredContent"]
}

fn column<'v>(described: &'v Value, name: &str) -> &'v Value {
    let columns = described["columns"].as_array().expect("columns");
    columns
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}: {described}"))
}

fn uris(h: &Harness) -> Vec<String> {
    h.upstream_requests().into_iter().map(|r| r.uri).collect()
}

#[tokio::test]
async fn describe_shows_types_key_lookups_labels_and_choices() {
    let (h, c) = start(POLICY).await;
    h.sim.clear_requests();
    let r = c
        .call("describe_table", json!({"table": "opportunities"}))
        .await;
    assert_eq!(r["isError"], false, "{r}");
    let d = content(&r);
    assert_eq!(d["key"], json!(["opportunityid"]));
    assert_eq!(d["display_name"], "Opportunity");
    assert!(
        d["description"]
            .as_str()
            .unwrap()
            .starts_with("Potential revenue")
    );
    assert!(d.get("labels_unavailable").is_none(), "{d}");
    let names: Vec<&str> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "_parentaccountid_value",
            "estimatedvalue",
            "name",
            "statuscode"
        ]
    );
    let value = column(d, "estimatedvalue");
    assert_eq!(value["type"], "Edm.Decimal");
    assert_eq!(value["display_name"], "Est. Revenue");
    assert_eq!(value["attribute_type"], "Money");
    assert!(
        value["description"]
            .as_str()
            .unwrap()
            .contains("estimated revenue")
    );
    assert_eq!(column(d, "name")["type"], "Edm.String");
    let lookup = column(d, "_parentaccountid_value");
    assert_eq!(
        (&lookup["type"], &lookup["display_name"]),
        (&json!("Edm.Guid"), &json!("Account"))
    );
    let status = column(d, "statuscode");
    assert_eq!(status["type"], "Edm.Int32");
    assert_eq!(status["attribute_type"], "Status");
    assert_eq!(
        status["choices"],
        json!([
            {"value": 1, "label": "In Progress"}, {"value": 2, "label": "On Hold"},
            {"value": 3, "label": "Won"}, {"value": 4, "label": "Canceled"},
            {"value": 5, "label": "Out-Sold"}
        ])
    );
    let lookups = d["lookups"].as_array().unwrap();
    assert_eq!(
        lookups.len(),
        1,
        "createdby leads outside the allowlist: {lookups:?}"
    );
    assert_eq!(
        (
            &lookups[0]["column"],
            &lookups[0]["target"],
            &lookups[0]["target_table"]
        ),
        (
            &json!("_parentaccountid_value"),
            &json!("account"),
            &json!("accounts")
        )
    );
    let base = "/api/data/v9.2/EntityDefinitions(LogicalName='opportunity')";
    assert_eq!(
        uris(&h),
        [
            format!("{base}?$select=LogicalName,DisplayName,Description"),
            format!(
                "{base}/Attributes?$select=LogicalName,DisplayName,Description,AttributeType,AttributeTypeName"
            ),
            format!(
                "{base}/Attributes/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)"
            ),
        ],
        "only the option sets of the choice types shown are read"
    );
}

#[tokio::test]
async fn a_hidden_column_is_absent_labels_and_choices_included() {
    let policy = POLICY.replace(
        "[name, estimatedvalue, statuscode, _parentaccountid_value]",
        "[name, estimatedvalue]",
    );
    let (h, c) = start(&policy).await;
    h.sim.clear_requests();
    let r = c
        .call("describe_table", json!({"table": "opportunities"}))
        .await;
    let d = content(&r);
    let names: Vec<&str> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["estimatedvalue", "name"]);
    assert_eq!(column(d, "estimatedvalue")["display_name"], "Est. Revenue");
    let text = r["content"][0]["text"].as_str().unwrap();
    for hidden in [
        "statuscode",
        "Status Reason",
        "In Progress",
        "parentaccountid",
        "Account",
    ] {
        assert!(!text.contains(hidden), "`{hidden}` shown: {text}");
    }
    assert_eq!(d["lookups"], json!([]));
    assert!(
        !uris(&h)
            .iter()
            .any(|u| u.contains("StatusAttributeMetadata")),
        "no option sets read for hidden columns: {:?}",
        uris(&h)
    );
}

#[tokio::test]
async fn list_tables_labels_come_from_one_filtered_listing() {
    let (h, c) = start(POLICY).await;
    h.sim.clear_requests();
    let r = c.call("list_tables", json!({})).await;
    let tables = content(&r)["tables"].as_array().unwrap().clone();
    let shown: Vec<(&str, &str)> = tables
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap(),
                t["display_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("accounts", "Account"),
            ("contacts", "Contact"),
            ("opportunities", "Opportunity")
        ]
    );
    assert!(
        tables[1]["description"]
            .as_str()
            .unwrap()
            .starts_with("Person")
    );
    assert_eq!(
        uris(&h),
        [
            "/api/data/v9.2/EntityDefinitions?$filter=LogicalName%20eq%20%27account%27%20or%20LogicalName%20eq%20%27contact%27%20or%20LogicalName%20eq%20%27opportunity%27&$select=LogicalName,DisplayName,Description"
        ]
    );
}

#[tokio::test]
async fn refused_label_requests_leave_the_facts_and_say_labels_are_unavailable() {
    // One request a second: the definition is read, the attributes request is refused (429).
    let policy = format!("{POLICY}    limits:\n      requests_per_second: 1\n      burst: 1\n");
    let (h, c) = start(&policy).await;
    h.sim.clear_requests();
    let r = c.call("describe_table", json!({"table": "contacts"})).await;
    assert_eq!(r["isError"], false, "labels are not the answer: {r}");
    let d = content(&r);
    assert_eq!(
        d["display_name"], "Contact",
        "the request that got through is used"
    );
    let why = d["labels_unavailable"].as_str().expect("says why");
    assert!(
        why.contains("429") || why.to_lowercase().contains("rate"),
        "{why}"
    );
    assert_eq!(column(d, "fullname")["type"], "Edm.String");
    assert!(column(d, "fullname").get("display_name").is_none());
    assert_eq!(d["key"], json!(["contactid"]));
    assert_eq!(uris(&h).len(), 1, "the refused request reached nothing");
    // The rate limit counted the label requests: the next call's label request is refused too.
    let r = c.call("list_tables", json!({})).await;
    assert!(content(&r)["labels_unavailable"].is_string(), "{r}");
    assert_eq!(content(&r)["tables"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_page_cap_is_configured() {
    let h = Harness::build(Default::default(), |sim| {
        format!(
            "mcp:\n  max_page_size: 3\n  max_result_bytes: 1KiB\ntenants:\n{}",
            tenant_yaml("contoso", true, sim, 0, &default_secret(), POLICY)
        )
    })
    .await;
    let c = McpClient::new(format!("{}/contoso/mcp", h.url));
    let list = c.modern(1, "tools/list", json!({})).await;
    let tools = list.body["result"]["tools"].as_array().unwrap().clone();
    let query = tools.iter().find(|t| t["name"] == "query").unwrap();
    assert_eq!(
        query["inputSchema"]["properties"]["page_size"]["maximum"],
        3
    );
    let over = c
        .modern(
            2,
            "tools/call",
            json!({"name": "query", "arguments": {"table": "contacts", "page_size": 4}}),
        )
        .await;
    assert_eq!(over.body["error"]["code"], -32602, "{}", over.body);
    assert_eq!(over.body["error"]["data"]["argument"], "page_size");
    assert!(
        over.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 3")
    );
    h.sim.clear_requests();
    let r = c
        .call(
            "query",
            json!({"table": "contacts", "select": ["fullname"]}),
        )
        .await;
    assert_eq!(
        content(&r)["count"],
        3,
        "the cap is the default page size: {r}"
    );
    assert_eq!(
        h.upstream_requests()[0].headers["prefer"],
        "odata.maxpagesize=3"
    );
    // The result cap applies to every request of a call: the attribute listing is over 1 KiB.
    let r = c.call("describe_table", json!({"table": "contacts"})).await;
    let why = content(&r)["labels_unavailable"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.starts_with("GatewayResultTooLarge: the result is over 1024 bytes"),
        "{r}"
    );
}
