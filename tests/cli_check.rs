//! `check`, run as the real binary: the policy matrix of the shipped config, warnings that
//! name a secret's location but never its value, and every error of a broken config with its
//! file, line and column.

mod common;

use common::proc::{assert_golden, assert_lines_in_order, check, gateway, run, write};

#[test]
fn check_prints_the_policy_matrix_of_the_shipped_config() {
    let run = check("gateway.yaml");
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(run.stderr, "", "a valid config prints nothing on stderr");

    assert_golden("check_gateway_yaml.txt", &run.stdout);
}

#[test]
fn check_never_prints_a_resolvable_secret() {
    let secret = "s3cr3t-value-check-must-not-print";
    let run = run(gateway()
        .args(["check", "--config", "gateway.yaml"])
        .env("CONTOSO_CLIENT_SECRET", secret));
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(
        !run.output().contains(secret),
        "secret printed:\n{}",
        run.output()
    );
    // Now that it resolves, only fabrikam's file secret is left to warn about.
    assert!(
        !run.stdout.contains("CONTOSO_CLIENT_SECRET"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(":22: tenants.fabrikam.auth.client_secret")
    );
}

#[test]
fn check_warns_about_an_inline_secret_by_location_only() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "inline-s3cr3t-must-not-print";
    let config = write(
        dir.path(),
        "inline.yaml",
        &format!(
            "tenants:
  acme:
    dataverse:
      url: https://acme.crm.dynamics.com
    auth:
      tenant_id: t
      client_id: c
      client_secret: {secret}
    allow:
      contacts: [GET]
"
        ),
    );
    let run = check(&config);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(
        !run.output().contains(secret),
        "secret printed:\n{}",
        run.output()
    );
    let warning = format!(
        "  {config}:8:22: tenants.acme.auth.client_secret: inline secret in the config file: \
         use {{ env: NAME }} or {{ file: PATH }}"
    );
    assert_lines_in_order(&run.stdout, &[warning]);
}

/// A config with one instance of each kind of error, at known positions.
const BROKEN: &str = "listen: 127.0.0.1:8080
colour: blue
tenants:
  Bad_Name:
    default: true
    dataverse:
      url: https://bad.crm.dynamics.com
    auth:
      tenant_id: t
      client_id: c
      client_secret: { env: BAD_SECRET }
  second:
    default: true
    dataverse:
      url: http://second.example.com
      api_version: v9.2
      api_version: v9.1
    auth:
      tenant_id: t
      client_id: c
      client_secret: { env: SECOND_SECRET }
    allow:
      contacts: [GET, FETCH]
    functons: [WhoAmI]
";

#[test]
fn check_lists_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.yaml", BROKEN);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert_eq!(run.stdout, "", "nothing on stdout for an invalid config");
    let expected = [
        "2:1: colour: unknown key `colour` (expected one of: listen, admin_listen, public_url, \
         upstream_tls, tls, agent_auth, clients, audit, log_format, shutdown_grace, timeouts, limits, rate_limit_store, key_vault, mcp, tenants)",
        "4:3: tenants.Bad_Name: tenant name `Bad_Name` must match [a-z0-9][a-z0-9-]* \
         (it becomes a URL path segment)",
        "13:14: tenants.second.default: at most one tenant may be `default: true` \
         (`Bad_Name` already is)",
        "15:12: tenants.second.dataverse.url: `http://second.example.com` must use https \
         (http is allowed only for loopback hosts)",
        "17:7: tenants.second.dataverse.api_version: duplicate key `api_version` \
         (first defined at 16:7)",
        "23:23: tenants.second.allow.contacts: `FETCH` is not one of GET, POST, PATCH, PUT, DELETE",
        "24:5: tenants.second.functons: unknown key `functons` (expected one of: default, hosts, \
         dataverse, auth, limits, allow, functions, actions, allow_metadata, \
         allow_all_entity_definitions, allow_uninspectable)",
    ];
    let expected: Vec<String> = expected.iter().map(|e| format!("{file}:{e}")).collect();
    assert_lines_in_order(&run.stderr, &expected);
    // Every line is a diagnostic, except the closing count.
    for line in run.stderr.lines() {
        let summary =
            line.starts_with(&format!("error: {file} has ")) && line.ends_with(" error(s)");
        assert!(
            summary || line.starts_with(&format!("{file}:")),
            "stray stderr line: {line}"
        );
    }
    assert!(
        run.stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("error: ")),
        "{}",
        run.stderr
    );
}

#[test]
fn check_reports_a_duplicate_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.yaml", BROKEN);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.output());
    let about_line_17: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{file}:17:")))
        .collect();
    assert_eq!(
        about_line_17.len(),
        1,
        "one error for one duplicate key:\n{}",
        run.stderr
    );
}

#[test]
fn check_reports_auth_errors_even_when_dataverse_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.yaml",
        "tenants:
  acme:
    dataverse:
      url: http://acme.example.com
    auth:
      tenant_id: t
      client_id: c
      authority: http://login.example.com
      client_secret: { env: ACME_SECRET }
      colour: blue
",
    );
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.output());
    let expected = [
        "4:12: tenants.acme.dataverse.url: `http://acme.example.com` must use https \
         (http is allowed only for loopback hosts)",
        "8:18: tenants.acme.auth.authority: `http://login.example.com` must use https \
         (http is allowed only for loopback hosts)",
        "10:7: tenants.acme.auth.colour: unknown key `colour` (expected one of: tenant_id, \
         client_id, authority, scope, client_secret, certificate, managed_identity, \
         workload_identity)",
    ];
    let expected: Vec<String> = expected.iter().map(|e| format!("{file}:{e}")).collect();
    assert_lines_in_order(&run.stderr, &expected);
}

#[test]
fn check_reports_a_yaml_syntax_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "listen: 127.0.0.1:8080\ntenants:\n  a:\n    allow: [GET, POST\n    functions: x\n",
            "5:14",
        ),
        ("tenants:\n  a:\n    b: c\n   d: e\n", "4:4"),
        ("tenants: {a: 1\n", "1:10"),
    ];
    for (i, (text, position)) in cases.into_iter().enumerate() {
        let file = write(dir.path(), &format!("syntax{i}.yaml"), text);
        let run = check(&file);
        assert_eq!(run.code, Some(1), "{text}\n{}", run.output());
        assert_eq!(run.stdout, "", "{text}");
        let first = run.stderr.lines().next().unwrap_or_default();
        let prefix = format!("{file}:{position}: (document): invalid YAML: ");
        assert!(
            first.starts_with(&prefix),
            "expected {prefix}...\n{}",
            run.stderr
        );
    }
}
