//! `check`'s MCP tool list and `explain --mcp TOOL JSON` (offline, like the rest of the CLI).
//!
//! Both use the front door's own pure parts — the catalogue ([`tools::Catalogue`]) and the
//! planner ([`plan::plan`]) — and the classifier, so what they print is what a running gateway
//! would list and do. Metadata comes from each tenant's `dataverse.metadata_file` (or
//! `--metadata`); without it the tool list is the allowlist's, unchecked against the org.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::cli::report;
use crate::config::{Config, Tenant};
use crate::policy::decision::Decision;
use crate::policy::metadata::Metadata;
use crate::proxy::mcp::describe::{self, LabelPlan};
use crate::proxy::mcp::plan::{self, Plan, PlanError, WebCall};
use crate::proxy::mcp::tools::Catalogue;

fn metadata_of(t: &Tenant, arg: Option<&Path>) -> Result<Option<Metadata>, String> {
    match arg.or(t.dataverse.metadata_file.as_deref()) {
        Some(path) => crate::proxy::gateway::load_metadata_file(path).map(Some),
        None => Ok(None),
    }
}

/// The tools each tenant exposes at `/{tenant}/mcp`, and the clients that may use them.
pub fn tool_lists(config: &Config) -> String {
    let mut out = String::from("MCP tools (/{tenant}/mcp):\n");
    for t in &config.tenants {
        let clients: Vec<&str> = config
            .clients
            .iter()
            .filter(|c| c.tenants.iter().any(|n| n == &t.name))
            .map(|c| c.name.as_str())
            .collect();
        let who = match (config.clients.is_empty(), clients.is_empty()) {
            (true, _) => "any caller".to_string(),
            (false, true) => "no client may use it".to_string(),
            (false, false) => format!("clients {}", clients.join(", ")),
        };
        let (meta, note) = match metadata_of(t, None) {
            Ok(Some(m)) => (Some(m), ""),
            Ok(None) => (None, ", no metadata_file: tables unchecked against the org"),
            Err(_) => (None, ", metadata_file unreadable: tables unchecked"),
        };
        let _ = writeln!(out, "  {} ({who}{note}):", t.name);
        write_tools(&mut out, config, &t.policy, meta.as_ref(), "    ");
        for c in &config.clients {
            if let Some(narrowed) = c.policy_for(&t.name) {
                let _ = writeln!(out, "    as client {} (its own policy):", c.name);
                write_tools(&mut out, config, narrowed, meta.as_ref(), "      ");
            }
        }
    }
    out
}

/// One tool per line (with the tables it may touch) for a caller running under `policy`.
fn write_tools(
    out: &mut String,
    config: &Config,
    policy: &crate::config::Policy,
    meta: Option<&Metadata>,
    indent: &str,
) {
    let cat = Catalogue {
        policy,
        metadata: meta,
        page_cap: config.mcp.max_page_size,
    };
    let tools = cat.tools();
    if tools.is_empty() {
        let _ = writeln!(out, "{indent}(none)");
    }
    for tool in tools {
        let tables = tool.input_schema["properties"]["table"]["enum"]
            .as_array()
            .map(|a| {
                let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                format!(" [{}]", names.join(", "))
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{indent}{}{tables}", tool.name);
    }
}

/// What `explain --mcp` prints, and whether every request it makes is allowed.
pub fn explain(
    config: &Config,
    tenant: Option<&str>,
    client: Option<&str>,
    metadata: Option<&Path>,
    tool: &str,
    json: &str,
) -> Result<(String, bool), String> {
    let t = match tenant {
        Some(name) => config.tenants.iter().find(|t| t.name == name),
        None => config
            .tenants
            .iter()
            .find(|t| t.default)
            .or(config.tenants.first()),
    }
    .ok_or("no such tenant (give --tenant NAME)")?;
    let policy = match client {
        None => &t.policy,
        Some(name) => {
            let c = config
                .clients
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("no client named `{name}` in the config"))?;
            if !c.tenants.iter().any(|n| n == &t.name) {
                return Err(format!("client `{name}` may not use tenant {}", t.name));
            }
            c.policy_for(&t.name).map_or(&t.policy, |p| &**p)
        }
    };
    let args: Value =
        serde_json::from_str(json).map_err(|e| format!("the arguments are not JSON: {e}"))?;
    let Value::Object(args) = args else {
        return Err("the arguments must be a JSON object".into());
    };
    let meta = metadata_of(t, metadata)?;
    let cat = Catalogue {
        policy,
        metadata: meta.as_ref(),
        page_cap: config.mcp.max_page_size,
    };
    let mut out = String::new();
    let _ = writeln!(out, "MCP tool {tool} on tenant {}", t.name);
    if !cat.lists(tool) {
        let _ = writeln!(
            out,
            "  not listed for this tenant: a call is refused as an unknown tool (invalid params), nothing is sent"
        );
        return Ok((out, false));
    }
    let call = match plan::plan(&cat, tool, &args) {
        Ok(Plan::Described(d)) => {
            let _ = writeln!(out, "  answered from the allowlist and metadata");
            let calls = match &d.labels {
                LabelPlan::None => Vec::new(),
                LabelPlan::Tables(calls) => calls.clone(),
                LabelPlan::Table(logical) => label_calls(logical),
            };
            if !calls.is_empty() {
                let _ = writeln!(
                    out,
                    "  labels read with these requests (the choice ones only when such columns are shown; refused: labels unavailable):"
                );
            }
            for call in &calls {
                let decision = decide(config, t, policy, meta.as_ref(), call);
                let url = format!(
                    "/{}/api/data/{}/{}",
                    t.name, t.dataverse.api_version, call.target
                );
                out.push_str(&report::explanation(&t.name, "GET", &url, &decision));
            }
            return Ok((out, true));
        }
        Ok(Plan::Continue(..)) => {
            return Err(
                "a cursor continues an earlier query: explain the query that made it".into(),
            );
        }
        Ok(Plan::Call(c) | Plan::Query(c, ..)) => c,
        Err(PlanError::Refused(reason)) => {
            let _ = writeln!(out, "  refused without a request: {reason}");
            return Ok((out, false));
        }
        Err(e) => return Err(format!("invalid params: {e}")),
    };
    let decision = decide(config, t, policy, meta.as_ref(), &call);
    let url = format!(
        "/{}/api/data/{}/{}",
        t.name, t.dataverse.api_version, call.target
    );
    out.push_str(&report::explanation(
        &t.name,
        call.method.as_str(),
        &url,
        &decision,
    ));
    for (name, value) in &call.headers(call.body_bytes().len()) {
        let _ = writeln!(out, "  header: {name}: {}", value.to_str().unwrap_or(""));
    }
    if let Some(b) = &call.body {
        let _ = writeln!(out, "  body: {b}");
    }
    Ok((out, decision.allowed()))
}

/// Every request `describe_table` may make to label `logical`.
fn label_calls(logical: &str) -> Vec<WebCall> {
    let mut calls = vec![
        describe::table_call(logical),
        describe::attributes_call(logical),
    ];
    for cast in [
        "PicklistAttributeMetadata",
        "StateAttributeMetadata",
        "StatusAttributeMetadata",
        "MultiSelectPicklistAttributeMetadata",
    ] {
        calls.push(describe::option_call(logical, cast));
    }
    calls
}

fn decide(
    config: &Config,
    t: &Tenant,
    policy: &crate::config::Policy,
    meta: Option<&Metadata>,
    call: &WebCall,
) -> Decision {
    let origin = config
        .public_url
        .clone()
        .unwrap_or_else(|| "http://gateway".to_string());
    let urls = crate::policy::classify::Urls {
        org: t.dataverse.url.clone(),
        gateway: vec![format!("{origin}/{}", t.name), origin],
        api_version: t.dataverse.api_version.clone(),
    };
    let body = call.body_bytes();
    let headers = call.headers(body.len());
    let (path, query) = call.path_and_query();
    crate::policy::inspect::inspect(
        &crate::policy::inspect::Tenant {
            policy,
            metadata: meta,
            urls: &urls,
        },
        &crate::policy::classify::Request {
            method: &call.method,
            path,
            query,
            headers: &headers,
            body: (!body.is_empty()).then_some(&body[..]),
        },
    )
    .decision
}
