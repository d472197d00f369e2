//! Interop: the official MCP Python SDK (PyPI `mcp`, tests/interop/mcp), unmodified, through the
//! gateway's MCP front door to the simulator — once with the `initialize` handshake
//! (2025-11-25) and once stateless (2026-07-28, negotiated by the SDK's `server/discover` probe).
//!
//! The SDK is installed under `target/interop/mcp-venv` by `bash scripts/test.sh`. Without it
//! this test FAILS, saying so: it never passes silently.

mod common;
#[path = "interop/stack.rs"]
#[allow(dead_code)]
mod stack;

use std::path::Path;

use serde_json::{Value, json};
use stack::{Stack, count, dump, installed, never_reached};

const POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
    functions: [WhoAmI]
";

fn ok<'a>(report: &'a Value, era: &str, op: &str) -> &'a Value {
    let o = &report[era][op];
    assert_eq!(o["ok"], true, "{era} {op}: {o}\n{report}");
    &o["detail"]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_sdk_uses_the_mcp_front_door_in_both_eras() {
    let venv = installed("mcp", "requirements.txt", "bin/python");
    let stack = Stack::start(POLICY, false).await;
    let mut python = tokio::process::Command::new(venv.join("bin/python"));
    python
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/mcp/client.py"))
        .env("MCP_URL", format!("{}/contoso/mcp", stack.url));
    let report = stack.run(python).await.value;
    assert_eq!(ok(&report, "legacy", "protocol_version"), "2025-11-25");
    assert_eq!(ok(&report, "modern", "protocol_version"), "2026-07-28");
    // 8 seeded contacts; the handshake session creates a 9th before the stateless one queries.
    for (era, pages) in [("legacy", json!([3, 3, 2])), ("modern", json!([3, 3, 3]))] {
        let tools = ok(&report, era, "tools");
        assert_eq!(
            tools,
            &json!([
                "list_tables",
                "describe_table",
                "query",
                "fetch_xml",
                "get",
                "create",
                "update",
                "WhoAmI"
            ])
        );
        assert_eq!(
            ok(&report, era, "list_tables")["tables"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let columns = ok(&report, era, "describe")["columns"]
            .as_array()
            .unwrap()
            .clone();
        assert!(columns.len() > 3);
        let fullname = columns.iter().find(|c| c["name"] == "fullname");
        assert_eq!(
            fullname.map(|c| (&c["type"], &c["display_name"])),
            Some((&json!("Edm.String"), &json!("Full Name"))),
            "{columns:?}"
        );
        let paging = ok(&report, era, "query_paging");
        assert_eq!(paging["pages"], pages, "{era}: {paging}");
        assert!(ok(&report, era, "create")["id"].is_string());
        ok(&report, era, "update");
        assert_eq!(ok(&report, era, "read_back")["lastname"], "McpSdkRenamed");
        let denied = &report[era]["denied"];
        assert_eq!(denied["ok"], false, "{denied}");
        assert_eq!(denied["detail"]["error"]["code"], "GatewayPolicyDenied");
        assert!(
            denied["detail"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`leads`"),
            "{denied}"
        );
        assert!(ok(&report, era, "whoami")["UserId"].is_string());
    }
    let log = stack.sim.requests();
    never_reached(&log, &["leads"]);
    assert_eq!(
        count(&log, "POST", |u| u.ends_with("/contacts")),
        2,
        "{}",
        dump(&log)
    );
    assert_eq!(
        count(&log, "PATCH", |u| u.contains("/contacts(")),
        2,
        "{}",
        dump(&log)
    );
    assert_eq!(
        count(&log, "GET", |u| u.ends_with("/WhoAmI()")),
        2,
        "{}",
        dump(&log)
    );
    stack.assert_forwarded_cleanly(&log);
}
