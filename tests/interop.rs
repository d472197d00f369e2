//! Interop: the real SDKs agents use, unmodified, through the gateway to the simulator — npm
//! `dynamics-web-api` v2 (tests/interop/js) and PyPI `powerplatform-dataverse-client`
//! (tests/interop/py).
//!
//! Each test starts the simulator and a gateway on loopback port 0 (over TLS for Python, which
//! refuses `http://`; its CA is made fresh by `common::pki`), runs the SDK's client script as a
//! child process with the proxy variables cleared, reads the one JSON report it prints
//! (`{operation: {ok, detail}}`), asserts every operation's outcome, and checks in the
//! simulator's request log that the allowed operations reached Dataverse and the forbidden ones
//! never did. The machinery (gateway stack, report, install lookup, log helpers) is in
//! `interop/stack.rs`.
//!
//! The SDKs are installed under `target/interop` by `bash scripts/test.sh` (the README's test
//! command). Without them these tests FAIL, saying so: they never pass silently.

mod common;
#[path = "interop/stack.rs"]
mod stack;

use std::path::Path;

use serde_json::json;
use stack::{Stack, bodies, count, dump, installed, never_reached};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// What dynamics-web-api needs: plain CRUD on contacts (its update is a PATCH with
/// `If-Match: *`), reads of accounts, WhoAmI; its `$batch` parts are checked against the same.
const JS_POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
    functions: [WhoAmI]
";

/// What the Python SDK needs: CRUD. Its list writes (CreateMultiple/UpdateMultiple) are POST
/// and PATCH on their table and need no `actions` entry; its `EntityDefinitions` reads of
/// allowlisted tables are allowed by the gateway without a rule.
const PY_POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
";

#[tokio::test(flavor = "multi_thread")]
async fn dynamics_web_api_works_through_the_gateway_and_reads_its_denials() {
    let node_modules = installed("js", "package-lock.json", "node_modules/dynamics-web-api");
    let stack = Stack::start(JS_POLICY, false).await;
    let mut node = tokio::process::Command::new("node");
    node.arg(Path::new(MANIFEST_DIR).join("tests/interop/js/client.js"))
        .env("NODE_PATH", node_modules.join("node_modules"));
    let report = stack.run(node).await;

    let ids = report.ok("create")["ids"].as_array().cloned().unwrap();
    assert_eq!(ids.len(), 5, "{}", report.text);
    let id0 = ids[0].as_str().unwrap();
    assert!(report.ok("whoami")["userId"].is_string());
    let row = report.ok("retrieve");
    assert_eq!(
        (&row["firstname"], &row["lastname"]),
        (&"P1".into(), &"InteropJs".into())
    );
    assert_eq!(report.ok("update")["firstname"], "Renamed");
    let paging = report.ok("retrieve_multiple_paging");
    assert_eq!(paging["pages"], json!([2, 2, 1]), "{paging}");
    for link in paging["nextLinks"].as_array().unwrap() {
        let link = link.as_str().unwrap();
        assert!(
            link.starts_with(&format!("{}/api/data/v9.2/contacts?", stack.url)),
            "the SDK got a nextLink that leaves the gateway: {link}"
        );
    }
    assert_eq!(report.ok("retrieve_all")["count"], 5);
    let long = report.ok("long_url_as_batch");
    assert_eq!(long["count"], 5, "{long}");
    assert!(long["filterLength"].as_u64().unwrap() > 2000, "{long}");
    let batch = report.ok("batch");
    assert_eq!(batch["listed"], 5, "{batch}");
    assert!(batch["created"].is_string(), "{batch}");
    assert_eq!(batch["firstname"], "BatchRenamed", "{batch}");
    for name in [
        "denied_table",
        "denied_write",
        "denied_expand",
        "denied_navigation",
        "denied_batch",
    ] {
        report.denied(name);
    }

    let log = stack.sim.requests();
    eprintln!("{}\nDataverse saw:{}", report.text, dump(&log));
    stack.assert_forwarded_cleanly(&log);
    assert_eq!(count(&log, "GET", |u| u.ends_with("/WhoAmI()")), 1);
    assert_eq!(count(&log, "POST", |u| u == "/api/data/v9.2/contacts"), 5);
    let record = format!("/api/data/v9.2/contacts({id0})");
    assert_eq!(count(&log, "PATCH", |u| u == record), 1, "{}", dump(&log));
    assert!(count(&log, "GET", |u| u.starts_with(&record)) >= 2);
    assert_eq!(count(&log, "GET", |u| u.contains("$skiptoken=")), 4);
    let batches = bodies(&log, "$batch");
    assert_eq!(
        batches.len(),
        2,
        "long URL + batch, not the denied one: {}",
        dump(&log)
    );
    assert!(batches[0].contains("padding-"), "{}", batches[0]);
    assert!(batches[1].contains("FromBatch"), "{}", batches[1]);
    never_reached(&log, &["opportunities", "createdby", "$expand"]);
    assert_eq!(count(&log, "POST", |u| u.contains("accounts")), 0);
    assert!(!batches.iter().any(|b| b.contains("accounts")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_works_through_the_gateway_over_tls_and_reads_its_denials() {
    let venv = installed("py", "requirements.txt", "bin/python");
    let stack = Stack::start(PY_POLICY, true).await;
    let mut python = tokio::process::Command::new(venv.join("bin/python"));
    python
        .arg(Path::new(MANIFEST_DIR).join("tests/interop/py/client.py"))
        .env("REQUESTS_CA_BUNDLE", stack.ca_file.as_ref().unwrap())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let report = stack.run(python).await;

    let id0 = report.ok("create")["id"].as_str().unwrap().to_string();
    let created = report.ok("create_multiple")["ids"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(created.len(), 4, "{}", report.text);
    let row = report.ok("retrieve");
    assert_eq!(
        (&row["firstname"], &row["lastname"]),
        (&"P1".into(), &"InteropPy".into())
    );
    assert_eq!(report.ok("update")["firstname"], "Renamed");
    assert_eq!(
        report.ok("update_multiple")["firstnames"],
        json!(["Bulk", "Bulk"])
    );
    assert_eq!(report.ok("list_paging")["pages"], json!([2, 2, 1]));
    let batch = report.ok("batch");
    assert_eq!(batch["statuses"], json!([200, 204, 204]), "{batch}");
    assert_eq!(batch["retrieved"], "Renamed", "{batch}");
    assert_eq!(batch["firstname"], "BatchRenamed", "{batch}");
    for name in [
        "denied_table",
        "denied_write",
        "denied_expand",
        "denied_sql",
    ] {
        report.denied(name);
    }

    let log = stack.sim.requests();
    eprintln!("{}\nDataverse saw:{}", report.text, dump(&log));
    stack.assert_forwarded_cleanly(&log);
    let api = "/api/data/v9.2";
    // Before its first write to a table the SDK resolves it and reads its picklists.
    let definitions = format!("{api}/EntityDefinitions?$select=LogicalName,EntitySetName");
    assert!(count(&log, "GET", |u| u.starts_with(&definitions)) >= 2);
    let picklists = format!(
        "{api}/EntityDefinitions(LogicalName='contact')/Attributes/\
         Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet"
    );
    assert_eq!(count(&log, "GET", |u| u.starts_with(&picklists)), 1);
    assert_eq!(count(&log, "POST", |u| u == format!("{api}/contacts")), 1);
    let action = |name: &str| format!("{api}/contacts/Microsoft.Dynamics.CRM.{name}");
    assert_eq!(count(&log, "POST", |u| u == action("CreateMultiple")), 1);
    assert_eq!(count(&log, "POST", |u| u == action("UpdateMultiple")), 1);
    let record = format!("{api}/contacts({id0})");
    assert_eq!(count(&log, "PATCH", |u| u == record), 1, "{}", dump(&log));
    assert_eq!(count(&log, "GET", |u| u.contains("$skiptoken=")), 2);
    let batches = bodies(&log, "$batch");
    assert_eq!(batches.len(), 1, "{}", dump(&log));
    assert!(batches[0].contains("BatchRenamed"), "{}", batches[0]);
    never_reached(&log, &["opportunit", "createdby", "sql="]);
    assert_eq!(count(&log, "POST", |u| u.contains("accounts")), 0);
}
