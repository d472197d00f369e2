//! The MCP front door in the CLI: `check` prints the tools each tenant exposes and who may use
//! them; `explain --mcp TOOL JSON` prints the Web API request a tool call makes and its decision
//! (exit 0 allowed, 2 denied, 1 a malformed argument).

mod common;

use common::SIM_CSDL;
use common::proc::{check, explain, write};

#[test]
fn check_lists_each_tenants_tools_with_their_tables_and_clients() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "clients:
  - name: sales-agent
    key_sha256: \"{}\"
    tenants: [a]
tenants:
  a:
    default: true
    dataverse: {{ url: https://a.crm.dynamics.com, metadata_file: {SIM_CSDL} }}
    auth: {{ tenant_id: t, client_id: c, client_secret: {{ env: DVGW_TEST_UNSET }} }}
    allow:
      contacts: [GET, PATCH, POST]
      nosuchtable: [GET, DELETE]
      accounts:
        verbs: [GET]
        columns: [name]
    functions: [WhoAmI, NoSuchFunction]
  b:
    dataverse: {{ url: https://b.crm.dynamics.com }}
    auth: {{ tenant_id: t, client_id: c, client_secret: {{ env: DVGW_TEST_UNSET }} }}
",
        "ab".repeat(32)
    );
    let path = write(dir.path(), "g.yaml", &yaml);
    let run = check(&path);
    assert_eq!(run.code, Some(0), "{}", run.output());
    let tools = run
        .stdout
        .split("MCP tools")
        .nth(1)
        .expect("an MCP section");
    assert_eq!(
        tools,
        " (/{tenant}/mcp):
  a (clients sales-agent):
    list_tables
    describe_table [accounts, contacts]
    query [accounts, contacts]
    fetch_xml [accounts, contacts]
    get [accounts, contacts]
    create [contacts]
    update [contacts]
    WhoAmI
  b (no client may use it, no metadata_file: tables unchecked against the org):
    (none)
"
        .to_string()
            + &format!("{path}: valid\n"),
        "a table or function the metadata lacks is refused, so not listed; no DELETE tool"
    );
}

#[test]
fn explain_mcp_prints_the_request_and_its_decision() {
    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "--mcp",
        "query",
        r#"{"table": "contacts", "select": ["fullname"], "page_size": 5}"#,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stdout.starts_with("MCP tool query on tenant contoso\nALLOW GET /contoso/api/data/v9.2/contacts?$select=fullname\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("  header: prefer: odata.maxpagesize=5\n"),
        "{}",
        run.stdout
    );

    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "--mcp",
        "query",
        r#"{"table": "accounts"}"#,
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(
        run.stdout
            .contains("reason: GET on `accounts`: the table is not in this tenant's allowlist"),
        "{}",
        run.stdout
    );

    let run = explain(&["--tenant", "fabrikam", "--mcp", "list_tables", "{}"]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(
        run.stdout
            .ends_with("answered from the allowlist and metadata\n"),
        "no metadata: no label request; {}",
        run.stdout
    );

    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "--mcp",
        "describe_table",
        r#"{"table": "contacts"}"#,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    for label_request in [
        "ALLOW GET /contoso/api/data/v9.2/EntityDefinitions(LogicalName='contact')?$select=LogicalName,DisplayName,Description\n",
        "ALLOW GET /contoso/api/data/v9.2/EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)\n",
    ] {
        assert!(run.stdout.contains(label_request), "{}", run.stdout);
    }

    let run = explain(&[
        "--mcp",
        "query",
        r#"{"table": "contacts", "page_size": 500}"#,
    ]);
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("argument `page_size`"),
        "{}",
        run.stderr
    );

    let run = explain(&[
        "--mcp",
        "delete",
        r#"{"table": "contacts", "id": "00000000-0000-0000-0000-000000000001"}"#,
    ]);
    assert_eq!(
        run.code,
        Some(2),
        "no table allows DELETE: {}",
        run.output()
    );
    assert!(run.stdout.contains("not listed"), "{}", run.stdout);
}
