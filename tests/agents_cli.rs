//! `check` and `explain` with agents: the effective matrix per client, widening client rules as
//! errors with their line and column, and `explain --client` deciding as that client.

mod common;

use common::SIM_CSDL;
use common::proc::{check, gateway, run, write};

const TENANT: &str = "tenants:
  contoso:
    default: true
    dataverse: { url: https://contoso.crm4.dynamics.com }
    auth:
      tenant_id: 00000000-0000-0000-0000-000000000001
      client_id: 00000000-0000-0000-0000-000000000002
      client_secret: { env: AGENTS_CLI_SECRET }
    allow:
      leads: [GET, PATCH]
      contacts: { verbs: [GET, POST], columns: [fullname, emailaddress1] }
      accounts: [GET]
    functions: [WhoAmI]
";

fn config(clients: &str) -> String {
    format!(
        "agent_auth:\n  tenant_id: 7a9e0000-0000-4000-8000-00000000a9e7\n  audience: api://dataverse-gateway\nclients:\n{clients}{TENANT}"
    )
}

const SALES: &str = "  - name: sales-agent
    entra: { app_id: 5a1e5000-0000-4000-8000-000000000001 }
    tenants: [contoso]
    limits: { requests_per_second: 5, burst: 10, max_concurrent: 4 }
    policy:
      contoso:
        allow: { leads: [GET], contacts: { verbs: [GET], columns: [fullname] } }
        functions: [WhoAmI]
        act_as: { caller_object_id: 0b1d0000-0000-4000-8000-0000000005a1 }
  - name: reporting
    entra: { role: Gateway.Reports }
    tenants: [contoso]
  - name: auditor
    entra: { object_id: 5a1e5000-0000-4000-8000-0000000000a0 }
    tenants: [contoso]
    policy:
      contoso:
        act_as: { caller_object_id: 0b1d0000-0000-4000-8000-0000000000a0 }
";

#[test]
fn check_prints_each_clients_effective_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "agents.yaml", &config(SALES));
    let run = check(&path);
    assert_eq!(run.code, Some(0), "{}", run.output());
    let out = &run.stdout;
    for line in [
        "client sales-agent (Entra token, app id 5a1e5000-0000-4000-8000-000000000001)",
        "  own limits: 5 requests/s, burst 10, at most 4 in flight",
        "  on tenant contoso: effective policy (the tenant's AND the client's)",
        "    contacts  yes  -     -      -    -       fullname",
        "    leads     yes  -     -      -    -       all",
        "    functions: WhoAmI",
        "    acts as the Dataverse user with Entra object id 0b1d0000-0000-4000-8000-0000000005a1 (CallerObjectId)",
        "client reporting (Entra token with app role Gateway.Reports)",
        "  on tenant contoso: the tenant's policy, unchanged",
        "client auditor (Entra token, object id 5a1e5000-0000-4000-8000-0000000000a0)",
        "    acts as the Dataverse user with Entra object id 0b1d0000-0000-4000-8000-0000000000a0 (CallerObjectId)",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
    assert!(
        !out.contains("    accounts"),
        "accounts is not the sales agent's:\n{out}"
    );
}

#[test]
fn check_refuses_client_rules_the_tenant_does_not_allow_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let widening = "  - name: greedy
    entra: { object_id: 5a1e5000-0000-4000-8000-0000000000b9 }
    tenants: [contoso]
    policy:
      contoso:
        allow:
          leads: [GET, DELETE]
          opportunities: [GET]
          contacts: { verbs: [GET], columns: [fullname, telephone1] }
        actions: [QualifyLead]
";
    let path = write(dir.path(), "greedy.yaml", &config(widening));
    let run = check(&path);
    assert_eq!(run.code, Some(1), "{}", run.output());
    let err = &run.stderr;
    for expected in [
        ":11:11: clients[0].policy.contoso.allow.leads: tenant contoso does not allow DELETE on `leads`",
        ":12:11: clients[0].policy.contoso.allow.opportunities: tenant contoso does not allow table `opportunities`",
        ":13:11: clients[0].policy.contoso.allow.contacts: tenant contoso does not allow column `telephone1` of `contacts`",
        ":14:9: clients[0].policy.contoso.actions: tenant contoso's `actions` does not list `QualifyLead`",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.contains("error: "), "{err}");
}

#[test]
fn a_client_has_one_identity_and_entra_needs_agent_auth() {
    let dir = tempfile::tempdir().unwrap();
    let both = "clients:\n  - name: two\n    entra: { role: R }\n    key_sha256: abababababababababababababababababababababababababababababababab\n    tenants: [contoso]\n";
    let path = write(dir.path(), "both.yaml", &format!("{both}{TENANT}"));
    let run = check(&path);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("`entra` needs `agent_auth`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("either `entra` or `key_sha256`, not both"),
        "{}",
        run.stderr
    );
}

#[test]
fn explain_as_a_client_names_the_layer_that_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "agents.yaml", &config(SALES));
    let explain = |args: &[&str]| {
        run(gateway()
            .args(["explain", "--config", &path, "--metadata", SIM_CSDL])
            .args(args))
    };
    let url = "https://gw/api/data/v9.2/accounts?$select=name";
    let as_tenant = explain(&["GET", url]);
    assert_eq!(as_tenant.code, Some(0), "{}", as_tenant.output());
    let as_sales = explain(&["--client", "sales-agent", "GET", url]);
    assert_eq!(as_sales.code, Some(2), "{}", as_sales.output());
    assert!(
        as_sales
            .stdout
            .contains("tenant: contoso (as client sales-agent)"),
        "{}",
        as_sales.stdout
    );
    assert!(
        as_sales
            .stdout
            .contains("the client sales-agent's policy does not allow this (the tenant's would)"),
        "{}",
        as_sales.stdout
    );
    let opp = explain(&[
        "--client",
        "sales-agent",
        "GET",
        "https://gw/api/data/v9.2/opportunities?$select=name",
    ]);
    assert_eq!(opp.code, Some(2));
    assert!(
        !opp.stdout.contains("client sales-agent's policy"),
        "the tenant refuses: {}",
        opp.stdout
    );
    let unknown = explain(&["--client", "nobody", "GET", url]);
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stderr.contains("no client named `nobody`"));
}
