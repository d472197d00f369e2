//! Policy equivalence of the MCP front door, over random allowlists of the simulator's schema.
//!
//! - `tools/list` never shows a tool, table or function the caller cannot use: for every table
//!   in a tool's enum, the request that tool makes (with an allowed column when the table is
//!   column-restricted) is allowed by the classifier; every allowlisted (table, verb) the
//!   metadata knows is shown; nothing else is (pure, no network).
//! - Generated tool calls through a running gateway: the requests reaching the simulator are
//!   exactly the ones the classifier allows for the request the call plans (same method, same
//!   target, plus the `$select` the decision adds); a denied call reaches nothing and is a tool
//!   error; a malformed or unlisted call reaches nothing.

mod common;

use common::mcp::McpClient;
use common::*;
use dataverse_gateway::config::{self, Verb};
use dataverse_gateway::policy::classify::{self, Urls};
use dataverse_gateway::policy::inspect;
use dataverse_gateway::policy::metadata::Metadata;
use dataverse_gateway::proxy::mcp::plan::{self, Plan, WebCall};
use dataverse_gateway::proxy::mcp::tools::Catalogue;
use http::HeaderValue;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Map, Value, json};

const TABLES: [&str; 6] = [
    "contacts",
    "accounts",
    "leads",
    "opportunities",
    "systemusers",
    "annotations",
];
const VERBS: [Verb; 4] = [Verb::Get, Verb::Post, Verb::Patch, Verb::Delete];
const ID: &str = "00000000-0000-0000-0000-0000000000c1";

fn metadata() -> Metadata {
    Metadata::parse(&std::fs::read(SIM_CSDL).unwrap()).unwrap()
}

/// Non-lookup columns of `set` (own and inherited), sorted.
fn columns(meta: &Metadata, set: &str) -> Vec<String> {
    let logical = meta.entity_set(set).unwrap().logical_name.clone();
    let mut cols: Vec<String> = meta
        .ancestry(&logical)
        .flat_map(|t| t.properties.iter().cloned())
        .filter(|c| !c.starts_with('_'))
        .collect();
    cols.sort();
    cols.dedup();
    cols
}

/// One table's rule: verb bits and, when restricted, column picks.
#[derive(Debug, Clone)]
struct Rule {
    verbs: u8,
    columns: Option<Vec<usize>>,
}

fn rules() -> impl Strategy<Value = (Vec<Rule>, bool)> {
    let rule = (
        0u8..16,
        proptest::option::of(proptest::collection::vec(0usize..64, 1..3)),
    )
        .prop_map(|(verbs, columns)| Rule { verbs, columns });
    (proptest::collection::vec(rule, TABLES.len()), any::<bool>())
}

/// The allowlist YAML (indented for `tenant_yaml`) of `rules`.
fn policy_yaml(meta: &Metadata, rules: &[Rule], whoami: bool) -> String {
    let mut y = String::from("    allow:\n");
    for (set, rule) in TABLES.iter().zip(rules) {
        let verbs: Vec<&str> = VERBS
            .iter()
            .enumerate()
            .filter(|(i, _)| rule.verbs & (1 << i) != 0)
            .map(|(_, v)| v.as_str())
            .collect();
        if verbs.is_empty() {
            continue;
        }
        match &rule.columns {
            None => y.push_str(&format!("      {set}: [{}]\n", verbs.join(", "))),
            Some(picks) => {
                let cols = columns(meta, set);
                let mut chosen: Vec<&str> = picks
                    .iter()
                    .map(|p| cols[p % cols.len()].as_str())
                    .collect();
                chosen.sort();
                chosen.dedup();
                y.push_str(&format!(
                    "      {set}:\n        verbs: [{}]\n        columns: [{}]\n",
                    verbs.join(", "),
                    chosen.join(", ")
                ));
            }
        }
    }
    if y.ends_with("allow:\n") {
        y = String::from("    allow: {}\n");
    }
    if whoami {
        y.push_str("    functions: [WhoAmI]\n");
    }
    y
}

fn policy_of(yaml: &str) -> config::Policy {
    let text = format!(
        "tenants:\n  t:\n    default: true\n    dataverse:\n      url: https://org.example\n    auth:\n      tenant_id: 00000000-0000-0000-0000-000000000001\n      client_id: 00000000-0000-0000-0000-000000000002\n      client_secret: s\n{yaml}"
    );
    let (c, _) = config::parse_str(&text, "p.yaml").unwrap_or_else(|d| panic!("{d}\n{text}"));
    c.tenants[0].policy.clone()
}

fn urls() -> Urls {
    Urls {
        org: "https://org.example".into(),
        gateway: vec!["http://gw/t".into(), "http://gw".into()],
        api_version: "v9.2".into(),
    }
}

/// The classifier's decision on the request `call` makes.
fn decide(
    policy: &config::Policy,
    meta: &Metadata,
    call: &WebCall,
) -> dataverse_gateway::policy::decision::Decision {
    let body = call.body_bytes();
    let mut headers = call.headers(body.len());
    headers.insert("host", HeaderValue::from_static("gw"));
    let (path, query) = call.path_and_query();
    let tenant = inspect::Tenant {
        policy,
        metadata: Some(meta),
        urls: &urls(),
    };
    let req = classify::Request {
        method: &call.method,
        path,
        query,
        headers: &headers,
        body: (!body.is_empty()).then_some(&body[..]),
    };
    inspect::inspect(&tenant, &req).decision
}

/// The arguments a listed tool needs for `set`: an allowed column when restricted.
fn canonical_args(
    policy: &config::Policy,
    meta: &Metadata,
    tool: &str,
    set: &str,
) -> Map<String, Value> {
    let column = match &policy.tables[set].columns {
        Some(cols) => cols[0].clone(),
        None => columns(meta, set)[0].clone(),
    };
    let logical = meta.entity_set(set).unwrap().logical_name.clone();
    let v = match tool {
        "query" => json!({"table": set, "select": [column]}),
        "get" => json!({"table": set, "id": ID, "select": [column]}),
        "fetch_xml" => {
            json!({"table": set, "fetch": format!("<fetch><entity name=\"{logical}\"><attribute name=\"{column}\"/></entity></fetch>")})
        }
        "create" => json!({"table": set, "record": {column: "x"}}),
        "update" => json!({"table": set, "id": ID, "record": {column: "x"}}),
        _ => json!({"table": set, "id": ID}),
    };
    v.as_object().unwrap().clone()
}

fn web_call(p: Plan) -> Option<WebCall> {
    match p {
        Plan::Call(c) | Plan::Query(c, ..) => Some(c),
        _ => None,
    }
}

#[test]
fn tools_list_never_shows_what_the_classifier_would_refuse() {
    let meta = metadata();
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 200,
        ..RunnerConfig::default()
    });
    runner
        .run(&rules(), |(rules, whoami)| {
            let policy = policy_of(&policy_yaml(&meta, &rules, whoami));
            let cat = Catalogue {
                policy: &policy,
                metadata: Some(&meta),
                page_cap: 50,
            };
            let tools = cat.tools();
            let listed = |name: &str| tools.iter().find(|t| t.name == name);
            for (tool, verb) in [
                ("query", Verb::Get),
                ("get", Verb::Get),
                ("fetch_xml", Verb::Get),
                ("create", Verb::Post),
                ("update", Verb::Patch),
                ("delete", Verb::Delete),
            ] {
                let want: Vec<&str> = TABLES
                    .iter()
                    .copied()
                    .filter(|s| policy.tables.get(*s).is_some_and(|r| r.allows(verb)))
                    .collect();
                let Some(t) = listed(tool) else {
                    prop_assert!(
                        want.is_empty(),
                        "{tool} missing though {want:?} allow {verb}"
                    );
                    continue;
                };
                let shown: Vec<String> =
                    serde_json::from_value(t.input_schema["properties"]["table"]["enum"].clone())
                        .unwrap();
                let mut sorted_want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
                sorted_want.sort();
                prop_assert_eq!(&shown, &sorted_want, "{}", tool);
                for set in &shown {
                    let args = canonical_args(&policy, &meta, tool, set);
                    let call = web_call(plan::plan(&cat, tool, &args).unwrap()).unwrap();
                    let d = decide(&policy, &meta, &call);
                    prop_assert!(
                        d.allowed(),
                        "{tool} lists {set} but {:?} {} is refused: {}",
                        call.method,
                        call.target,
                        d.reason()
                    );
                }
            }
            for name in [
                "list_tables",
                "describe_table",
                "query",
                "fetch_xml",
                "get",
                "create",
                "update",
                "delete",
                "WhoAmI",
                "other",
            ] {
                prop_assert_eq!(cat.lists(name), listed(name).is_some(), "{}", name);
            }
            prop_assert_eq!(listed("WhoAmI").is_some(), whoami);
            prop_assert_eq!(listed("list_tables").is_some(), !policy.tables.is_empty());
            const ALL: [&str; 9] = [
                "list_tables",
                "describe_table",
                "query",
                "fetch_xml",
                "get",
                "create",
                "update",
                "delete",
                "WhoAmI",
            ];
            let known = tools.iter().all(|t| ALL.contains(&t.name.as_str()));
            prop_assert!(known);
            Ok(())
        })
        .unwrap();
}

/// A generated tool call: tool, table, column picks and options.
#[derive(Debug, Clone)]
struct Drawn {
    tool: usize,
    table: usize,
    cols: Vec<usize>,
    bogus_column: bool,
    filter: Option<usize>,
    top: Option<u64>,
}

fn drawn() -> impl Strategy<Value = Drawn> {
    (
        0usize..9,
        0usize..TABLES.len(),
        proptest::collection::vec(0usize..64, 0..3),
        any::<bool>(),
        proptest::option::of(0usize..64),
        proptest::option::of(1u64..8),
    )
        .prop_map(|(tool, table, cols, bogus_column, filter, top)| Drawn {
            tool,
            table,
            cols,
            bogus_column,
            filter,
            top,
        })
}

const TOOLS: [&str; 9] = [
    "query",
    "get",
    "fetch_xml",
    "create",
    "update",
    "delete",
    "WhoAmI",
    "describe_table",
    "list_tables",
];

fn args_of(meta: &Metadata, d: &Drawn) -> (String, Map<String, Value>) {
    let set = TABLES[d.table];
    let all = columns(meta, set);
    let mut cols: Vec<String> = d.cols.iter().map(|c| all[c % all.len()].clone()).collect();
    if d.bogus_column {
        cols.push("nosuchcolumn".into());
    }
    let logical = meta.entity_set(set).unwrap().logical_name.clone();
    let tool = TOOLS[d.tool];
    let mut a = json!({"table": set});
    match tool {
        "query" => {
            if !cols.is_empty() {
                a["select"] = json!(cols);
            }
            if let Some(f) = d.filter {
                a["filter"] = json!(format!("{} ne null", all[f % all.len()]));
            }
            if let Some(t) = d.top {
                a["top"] = json!(t);
            }
        }
        "get" | "update" | "delete" => {
            a["id"] = json!(ID);
            let record: Map<String, Value> = cols.iter().map(|c| (c.clone(), json!("x"))).collect();
            if tool == "update" {
                a["record"] = Value::Object(record);
            } else if tool == "get" && !cols.is_empty() {
                a["select"] = json!(cols);
            }
        }
        "create" => {
            a["record"] = Value::Object(cols.iter().map(|c| (c.clone(), json!("x"))).collect())
        }
        "fetch_xml" => {
            let attrs: String = cols
                .iter()
                .map(|c| format!("<attribute name=\"{c}\"/>"))
                .collect();
            a["fetch"] = json!(format!(
                "<fetch><entity name=\"{logical}\">{attrs}</entity></fetch>"
            ));
        }
        "WhoAmI" | "list_tables" => a = json!({}),
        _ => {}
    }
    (tool.to_string(), a.as_object().unwrap().clone())
}

#[test]
fn what_reaches_dataverse_is_exactly_what_the_classifier_allows() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let meta = metadata();
    let h = rt.block_on(Harness::start());
    let c = McpClient::new(format!("{}/contoso/mcp", h.url));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        ..RunnerConfig::default()
    });
    let (allowed, denied) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&(rules(), drawn()), |((rules, whoami), d)| {
            let yaml = policy_yaml(&meta, &rules, whoami);
            let full = format!(
                "tenants:\n{}",
                tenant_yaml("contoso", true, &h.sim, 0, &default_secret(), &yaml)
            );
            let (cfg, _) = config::parse_str(&full, "case.yaml").unwrap();
            let policy = cfg.tenants[0].policy.clone();
            h.gateway.swap(cfg).unwrap();
            rt.block_on(h.wait_for_metadata());
            h.sim.clear_requests();
            let (tool, args) = args_of(&meta, &d);
            let answer =
                rt.block_on(c.modern(1, "tools/call", json!({"name": tool, "arguments": args})));
            let reached = h.sim.requests();
            let cat = Catalogue {
                policy: &policy,
                metadata: Some(&meta),
                page_cap: 50,
            };
            let listed = cat.tools().iter().any(|t| t.name == tool);
            let planned = plan::plan(&cat, &tool, &args);
            let call = match (listed, planned) {
                (true, Ok(Plan::Described(_))) => {
                    // Label requests: each one that reached Dataverse was allowed as it came.
                    for r in &reached {
                        let target = r.uri.strip_prefix("/api/data/v9.2/").unwrap_or(&r.uri);
                        let call = WebCall {
                            method: r.method.clone(),
                            target: target.to_string(),
                            body: None,
                            page_size: None,
                            existing_only: false,
                        };
                        prop_assert!(target.starts_with("EntityDefinitions"), "{}", r.uri);
                        prop_assert!(decide(&policy, &meta, &call).allowed(), "{}", r.uri);
                    }
                    prop_assert_eq!(&answer.body["result"]["isError"], &json!(false));
                    return Ok(());
                }
                (true, Ok(p)) => web_call(p),
                (true, Err(plan::PlanError::Refused(_))) => {
                    prop_assert_eq!(&answer.body["result"]["isError"], &json!(true));
                    prop_assert!(reached.is_empty());
                    return Ok(());
                }
                _ => {
                    prop_assert!(
                        answer.body.get("error").is_some(),
                        "{tool} {args:?}: {}",
                        answer.body
                    );
                    prop_assert!(
                        reached.is_empty(),
                        "unlisted or malformed call reached {reached:?}"
                    );
                    return Ok(());
                }
            };
            let Some(call) = call else {
                prop_assert!(reached.is_empty(), "a local tool reached Dataverse");
                return Ok(());
            };
            let d = decide(&policy, &meta, &call);
            let result = &answer.body["result"];
            if !d.allowed() {
                denied.set(denied.get() + 1);
                prop_assert!(
                    reached.is_empty(),
                    "denied ({}) but reached {:?}",
                    d.reason(),
                    reached.iter().map(|r| &r.uri).collect::<Vec<_>>()
                );
                prop_assert_eq!(&result["isError"], &json!(true));
                prop_assert_eq!(
                    &result["structuredContent"]["error"]["message"]
                        .as_str()
                        .map(|m| m.contains(&*d.reason())),
                    &Some(true),
                    "{}",
                    answer.body
                );
                return Ok(());
            }
            allowed.set(allowed.get() + 1);
            let mut uri = format!("/api/data/v9.2/{}", call.target);
            if let Some(s) = &d.add_select {
                uri.push(if call.target.contains('?') { '&' } else { '?' });
                uri.push_str("$select=");
                uri.push_str(s);
            }
            let got: Vec<(String, String)> = reached
                .iter()
                .map(|r| (r.method.to_string(), r.uri.clone()))
                .collect();
            prop_assert_eq!(got, vec![(call.method.to_string(), uri)], "{}", answer.body);
            Ok(())
        })
        .unwrap();
    eprintln!("allowed {} denied {}", allowed.get(), denied.get());
    assert!(
        allowed.get() >= cases / 10 && denied.get() >= cases / 10,
        "both sides exercised"
    );
}
