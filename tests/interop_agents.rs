//! Interop with agents: the real SDKs of `tests/interop.rs`, unmodified, as two agents of one
//! tenant. dynamics-web-api sends an Entra ID token of its own identity (from the simulated Entra
//! ID), the Python SDK a static client key; each sees only its own tables: the JS agent may read
//! `accounts` but not `opportunities`, the Python agent the reverse, though the tenant allows both.

mod common;
// This file uses part of the shared interop machinery.
#[allow(dead_code)]
#[path = "interop/stack.rs"]
mod stack;

use std::path::Path;

use common::agents::{self, AUDIENCE};
use dataverse_gateway::identity::clients::key_sha256_hex;
use stack::{Stack, count, dump, installed};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const PY_KEY: &str = "interop-python-agent-key";

const TENANT_POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
      opportunities: [GET]
    functions: [WhoAmI]
";

fn head(sim: &dataverse_gateway::sim::Simulator) -> String {
    agents::register(sim);
    format!(
        "{}clients:
  - name: js-agent
    entra: {{ app_id: {app} }}
    tenants: [contoso]
    policy:
      contoso:
        allow: {{ contacts: [GET, POST, PATCH], accounts: [GET] }}
        functions: [WhoAmI]
  - name: py-agent
    key_sha256: {key}
    tenants: [contoso]
    policy:
      contoso:
        allow: {{ contacts: [GET, POST, PATCH], opportunities: [GET] }}
",
        agents::agent_auth_yaml(sim),
        app = agents::sales_agent().client_id,
        key = key_sha256_hex(PY_KEY),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_agent_and_a_key_agent_each_see_only_their_tables() {
    let node_modules = installed("js", "package-lock.json", "node_modules/dynamics-web-api");
    let venv = installed("py", "requirements.txt", "bin/python");
    let stack = Stack::start_with(TENANT_POLICY, true, head).await;
    let ca = stack.ca_file.clone().unwrap();
    let token = agents::token(&stack.sim, &agents::sales_agent()).await;
    assert!(token.starts_with("eyJ") && !AUDIENCE.is_empty());

    let mut node = tokio::process::Command::new("node");
    node.arg(Path::new(MANIFEST_DIR).join("tests/interop/js/client.js"))
        .env("NODE_PATH", node_modules.join("node_modules"))
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("AGENT_TOKEN", &token)
        .env("FOREIGN_TABLE", "accounts");
    let js = stack.run(node).await;
    assert!(js.ok("whoami")["userId"].is_string());
    assert_eq!(js.ok("create")["ids"].as_array().unwrap().len(), 5);
    js.ok("foreign_table");
    js.denied("denied_table");
    assert!(
        js.message("denied_table")
            .contains("client js-agent's policy"),
        "{}",
        js.text
    );

    let mut python = tokio::process::Command::new(venv.join("bin/python"));
    python
        .arg(Path::new(MANIFEST_DIR).join("tests/interop/py/client.py"))
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AGENT_TOKEN", PY_KEY)
        .env("FOREIGN_TABLE", "account");
    let py = stack.run(python).await;
    assert!(py.ok("create")["id"].is_string());
    py.ok("denied_table"); // opportunities: the Python agent's own table
    py.denied("foreign_table");
    assert!(
        py.message("foreign_table")
            .contains("client py-agent's policy"),
        "{}",
        py.text
    );
    py.denied("denied_sql");

    let log = stack.sim.requests();
    stack.assert_forwarded_cleanly(&log);
    // Each table was read once, by the agent it belongs to; the refused reads never arrived.
    let reads = |set: &str| {
        count(&log, "GET", |u| {
            u.starts_with(&format!("/api/data/v9.2/{set}?"))
        })
    };
    assert_eq!(reads("accounts"), 1, "{}", dump(&log));
    assert_eq!(reads("opportunities"), 1, "{}", dump(&log));
    for r in &log {
        for (name, value) in &r.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !value.contains(&token) && !value.contains(PY_KEY),
                "forwarded in {name}"
            );
        }
    }
}
