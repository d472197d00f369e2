//! The command line as operators use it (SPEC section 2): `check`, `explain`, `serve` and `demo`
//! run as the real binary, with their exit status, stdout and stderr.
//!
//! Every child process lives in a [`Proc`], which kills it when a test fails, and writes its
//! output to files so that a failing assertion can show what the process printed. Waiting is
//! polling with a deadline (a TCP connect, an exit status), never a fixed sleep.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::proc::{Proc, free_port, write};
use dataverse_gateway::sim::{SimConfig, Simulator};
use serde_json::Value;

/// The repository root: `gateway.yaml` and `tests/golden/` live here.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long a command that needs no network may take.
const QUICK: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Harness: child processes, ports, configs
// ---------------------------------------------------------------------------------------------

/// The binary, run from the repository root with no secrets and no config from the environment.
fn gateway() -> Command {
    let mut cmd = common::proc::gateway();
    cmd.current_dir(ROOT);
    cmd
}

/// A command that ran to completion.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `args` to completion.
fn run(cmd: &mut Command) -> Finished {
    let mut proc = Proc::spawn(cmd);
    let status = proc.wait(QUICK);
    Finished {
        code: status.code(),
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

fn check(config: &str) -> Finished {
    run(gateway().args(["check", "--config", config]))
}

/// `explain --config gateway.yaml ARGS...` on the shipped example.
fn explain(args: &[&str]) -> Finished {
    run(gateway()
        .args(["explain", "--config", "gateway.yaml"])
        .args(args))
}

/// A config for one default tenant `sim` in front of `sim`, with the default app's secret in a
/// file, listening on `port`.
fn sim_config(sim: &Simulator, dir: &Path, port: u16) -> String {
    let app = &SimConfig::default().apps[0];
    let secret_file = write(dir, "client-secret", &format!("{}\n", app.secret));
    let yaml = format!(
        "listen: 127.0.0.1:{port}
tenants:
  sim:
    default: true
    dataverse:
      url: {url}
    auth:
      tenant_id: {tenant_id}
      client_id: {client_id}
      authority: {url}
      client_secret: {{ file: {secret_file:?} }}
    allow:
      contacts: [GET]
    functions: [WhoAmI]
",
        url = sim.base_url(),
        tenant_id = app.tenant_id,
        client_id = app.client_id,
    );
    write(dir, "gateway.yaml", &yaml)
}

fn http_client() -> reqwest::Client {
    dataverse_gateway::identity::tls::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Asserts that `needles` appear in `haystack` as whole lines, in this order.
fn assert_lines_in_order(haystack: &str, needles: &[String]) {
    let lines: Vec<&str> = haystack.lines().collect();
    let mut from = 0;
    for needle in needles {
        match lines[from..].iter().position(|l| l == needle) {
            Some(i) => from += i + 1,
            None => panic!("missing line (or out of order):\n{needle}\n--- in ---\n{haystack}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

fn golden(name: &str) -> PathBuf {
    Path::new(ROOT).join("tests/golden").join(name)
}

#[test]
fn check_prints_the_policy_matrix_of_the_shipped_config() {
    let run = check("gateway.yaml");
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(run.stderr, "", "a valid config prints nothing on stderr");

    let path = golden("check_gateway_yaml.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &run.stdout).expect("write golden file");
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(
        run.stdout,
        expected,
        "stdout differs from {}",
        path.display()
    );
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
         upstream_tls, tls, clients, audit, log_format, shutdown_grace, timeouts, limits, rate_limit_store, tenants)",
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
         dataverse, auth, limits, allow, functions, actions)",
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

/// The simulator's CSDL, standing in for an org's saved `$metadata`.
const SIM_CSDL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/metadata.xml");

// ---------------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------------

#[test]
fn explain_allows_a_listed_table_and_names_the_rule() {
    let run = explain(&["GET", "/api/data/v9.2/contacts?$select=fullname"]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert_eq!(
        run.stdout,
        "ALLOW GET /api/data/v9.2/contacts?$select=fullname
  tenant: contoso
  touches: GET contacts [fullname]
  rule: allow.contacts permits GET
"
    );

    let run = explain(&["GET", "/fabrikam/api/data/v9.2/WhoAmI"]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stdout.contains("tenant: fabrikam"), "{}", run.stdout);
    assert!(
        run.stdout.contains("rule: functions lists WhoAmI"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_names_what_patch_without_post_adds() {
    let dir = tempfile::tempdir().unwrap();
    let body = write(dir.path(), "body.json", r#"{"subject":"x"}"#);
    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "--body",
        &body,
        "PATCH",
        "/api/data/v9.2/leads(c0000000-0000-4000-8000-000000000001)",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.output());
    assert!(run.stdout.contains("adds: If-Match: *"), "{}", run.stdout);
    // without the body, explain says what it needs
    let run = explain(&[
        "PATCH",
        "/api/data/v9.2/leads(c0000000-0000-4000-8000-000000000001)",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(run.stderr.contains("--body"), "{}", run.stderr);
}

#[test]
fn explain_denies_a_table_outside_the_allowlist() {
    let run = explain(&["GET", "/api/data/v9.2/accounts"]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert_eq!(
        run.stdout,
        "DENY (403) GET /api/data/v9.2/accounts
  tenant: contoso
  touches: GET accounts (all columns)
  reason: GET on `accounts`: the table is not in this tenant's allowlist
"
    );

    let run = explain(&[
        "DELETE",
        "/api/data/v9.2/contacts(c0000000-0000-4000-8000-000000000001)",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.starts_with("DENY (403) "), "{}", run.stdout);
    assert!(
        run.stdout.contains("DELETE on `contacts` is not allowed"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_follows_expand_to_the_target_table() {
    // without metadata the navigation target is unknown: denied, and explain says why
    let run = explain(&[
        "GET",
        "/api/data/v9.2/contacts?$expand=parentcustomerid_account",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.starts_with("DENY (403) "), "{}", run.stdout);
    assert!(run.stdout.contains("metadata"), "{}", run.stdout);
    // with the org's metadata: the expansion reads accounts, which contoso does not allow
    let run = explain(&[
        "--metadata",
        SIM_CSDL,
        "GET",
        "/api/data/v9.2/contacts?$expand=parentcustomerid_account($select=name)",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(
        run.stdout.contains("touches: GET accounts [name]"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("GET on `accounts`"), "{}", run.stdout);
}

#[test]
fn explain_rejects_a_duplicate_query_option_as_malformed() {
    let run = explain(&[
        "GET",
        "/api/data/v9.2/contacts?$select=fullname&$select=emailaddress1",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(run.stdout.starts_with("DENY (400) "), "{}", run.stdout);
    assert!(
        run.stdout.contains("`$select` appears twice"),
        "{}",
        run.stdout
    );
}

#[test]
fn explain_rejects_a_method_override_header() {
    let run = explain(&[
        "--header",
        "X-HTTP-Method: DELETE",
        "GET",
        "/api/data/v9.2/contacts",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output());
    assert!(
        run.stdout
            .starts_with("DENY (400) GET /api/data/v9.2/contacts"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.to_ascii_lowercase().contains("x-http-method"),
        "{}",
        run.stdout
    );
    // Without the header the same request is allowed: the header is what made the difference.
    assert_eq!(explain(&["GET", "/api/data/v9.2/contacts"]).code, Some(0));
}

#[test]
fn explain_fails_with_1_on_an_unknown_tenant() {
    for args in [
        &["GET", "/nope/api/data/v9.2/contacts"][..],
        &["--tenant", "nope", "GET", "/api/data/v9.2/contacts"][..],
    ] {
        let run = explain(args);
        assert_eq!(run.code, Some(1), "{args:?}\n{}", run.output());
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.stderr.contains("unknown tenant `nope`"),
            "{args:?}\n{}",
            run.stderr
        );
    }
}

#[test]
fn explain_fails_with_1_on_a_missing_body_file() {
    let run = explain(&[
        "--body",
        "/nonexistent/body.json",
        "POST",
        "/api/data/v9.2/contacts",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.output());
    assert!(
        run.stderr.contains("/nonexistent/body.json"),
        "{}",
        run.stderr
    );
}

#[test]

fn explain_usage_error_exits_1_not_2() {
    // A script reading `2` as "denied" must not mistake a typo for a decision.
    let run = explain(&["GET"]);
    assert_eq!(run.code, Some(1), "{}", run.output());
}

// ---------------------------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------------------------

/// Tenant `acme`'s secret is an unset variable; the other tenants' secrets resolve, and must
/// not be printed while serve explains why it will not start.
fn unresolvable_secret_config(dir: &Path, inline: &str, in_file: &str) -> String {
    let secret_file = write(dir, "other-secret", in_file);
    let yaml = format!(
        "listen: 127.0.0.1:{port}
tenants:
  acme:
    dataverse:
      url: https://acme.crm.dynamics.com
    auth:
      tenant_id: t
      client_id: c
      client_secret: {{ env: DVGW_TEST_UNSET_SECRET }}
    allow:
      contacts: [GET]
  inline:
    dataverse:
      url: https://inline.crm.dynamics.com
    auth:
      tenant_id: t
      client_id: c
      client_secret: {inline}
  infile:
    dataverse:
      url: https://infile.crm.dynamics.com
    auth:
      tenant_id: t
      client_id: c
      client_secret: {{ file: {secret_file:?} }}
",
        port = free_port(),
    );
    write(dir, "gateway.yaml", &yaml)
}

#[test]
fn serve_refuses_to_start_on_an_unresolvable_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (inline, in_file) = ("inline-s3cr3t-serve", "file-s3cr3t-serve");
    let config = unresolvable_secret_config(dir.path(), inline, in_file);
    let started = Instant::now();
    let mut proc = Proc::spawn(
        gateway()
            .args(["serve", "--config", &config])
            .env_remove("DVGW_TEST_UNSET_SECRET"),
    );
    let status = proc.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "{}", proc.output());
    assert!(started.elapsed() < Duration::from_secs(5));

    let stderr = proc.stderr();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    assert!(
        errors[0].contains("tenants.acme.auth.client_secret"),
        "{stderr}"
    );
    assert!(errors[0].contains("DVGW_TEST_UNSET_SECRET"), "{stderr}");
    for secret in [inline, in_file] {
        assert!(
            !proc.output().contains(secret),
            "secret printed:\n{}",
            proc.output()
        );
    }
}

#[test]

fn serve_startup_error_is_one_line_with_the_yaml_location() {
    let dir = tempfile::tempdir().unwrap();
    let config = unresolvable_secret_config(dir.path(), "x-inline", "x-file");
    let mut proc = Proc::spawn(
        gateway()
            .args(["serve", "--config", &config])
            .env_remove("DVGW_TEST_UNSET_SECRET"),
    );
    let status = proc.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(1), "{}", proc.output());
    let stderr = proc.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line:\n{stderr}");
    assert!(
        lines[0].contains(&format!("{config}:9:22: tenants.acme.auth.client_secret")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_proxies_to_dataverse_and_exits_0_on_sigterm() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = sim_config(&sim, dir.path(), port);
    // debug logging: the secret must not leak even there
    let mut proc = Proc::spawn(
        gateway()
            .args(["serve", "--config", &config])
            .env("RUST_LOG", "debug"),
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    proc.wait_listening(addr).await;

    let http = http_client();
    let r = http
        .get(format!("http://{addr}/api/data/v9.2/WhoAmI"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", proc.output());
    let body: Value = r.json().await.unwrap();
    assert!(body["UserId"].is_string(), "{body}");
    assert_eq!(sim.token_requests(), 1);
    // besides the gateway's own $metadata fetch, exactly the agent's request arrived
    let upstream: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| !r.uri.ends_with("$metadata"))
        .collect();
    assert_eq!(upstream.len(), 1);
    assert!(upstream[0].uri.ends_with("/WhoAmI"), "{}", upstream[0].uri);

    let r = http
        .get(format!("http://{addr}/api/data/v9.2/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        sim.requests()
            .iter()
            .filter(|r| !r.uri.ends_with("$metadata"))
            .count(),
        1,
        "a denied request never reaches Dataverse"
    );

    proc.terminate();
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proc.output());
    let secret = &SimConfig::default().apps[0].secret;
    assert!(
        !proc.output().contains(secret.as_str()),
        "secret printed:\n{}",
        proc.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_finishes_a_request_in_flight_after_sigterm() {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator starts");
    sim.set_response_delay(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = sim_config(&sim, dir.path(), port);
    // On the single-threaded event loop (what a one-CPU deployment gets), shutdown included.
    let mut proc = Proc::spawn(
        gateway()
            .args(["serve", "--config", &config])
            .env("DATAVERSE_GATEWAY_THREADS", "1"),
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    proc.wait_listening(addr).await;

    let http = http_client();
    let request = tokio::spawn(
        http.get(format!("http://{addr}/api/data/v9.2/WhoAmI"))
            .send(),
    );
    // In flight: Dataverse has it and is holding the answer for 500ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sim.requests().iter().any(|r| r.uri.ends_with("/WhoAmI")) {
        assert!(
            Instant::now() < deadline,
            "the request never reached Dataverse\n{}",
            proc.output()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proc.terminate();

    let r = request
        .await
        .unwrap()
        .expect("the request in flight gets its answer");
    assert_eq!(r.status(), 200, "{}", proc.output());
    assert!(r.json::<Value>().await.unwrap()["UserId"].is_string());
    let status = proc.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proc.output());
}

// ---------------------------------------------------------------------------------------------
// demo
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_refuses_a_thread_count_that_is_not_a_positive_integer() {
    let out = run(gateway()
        .args(["serve", "--config", "gateway.yaml"])
        .env("DATAVERSE_GATEWAY_THREADS", "0"));
    assert_eq!(out.code, Some(1), "{}", out.output());
    assert!(
        out.output()
            .contains("DATAVERSE_GATEWAY_THREADS must be a positive integer"),
        "{}",
        out.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_an_allowed_and_a_denied_request() {
    let port = free_port();
    let mut proc = Proc::spawn(gateway().args(["demo", "--port", &port.to_string()]));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    proc.wait_listening(addr).await;

    let url = format!("http://127.0.0.1:{port}");
    let banner = proc.stdout();
    assert!(banner.contains(&format!("gateway:   {url} ")), "{banner}");
    assert!(
        banner.contains(&format!("curl -s {url}/api/data/v9.2/WhoAmI\n")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("curl -s {url}/api/data/v9.2/accounts\n")),
        "{banner}"
    );

    let http = http_client();
    let r = http
        .get(format!("{url}/api/data/v9.2/WhoAmI"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", proc.output());
    assert!(r.json::<Value>().await.unwrap()["UserId"].is_string());

    let r = http
        .get(format!("{url}/api/data/v9.2/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "GatewayPolicyDenied", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("accounts"), "{body}");

    proc.terminate();
    let status = proc.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proc.output());
}

/// Golden outputs of `explain` over the org's metadata: what a reviewer reads for the shapes
/// that reach other tables.
#[test]
fn explain_golden_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let body = write(
        dir.path(),
        "bind.json",
        r#"{"firstname":"a","parentcustomerid_account@odata.bind":"/accounts(a0000000-0000-4000-8000-000000000001)"}"#,
    );
    let cases: [(&str, Vec<&str>); 4] = [
        (
            "explain_expand.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "GET",
                "/api/data/v9.2/contacts?$select=fullname&$expand=parentcustomerid_account($select=name)",
            ],
        ),
        (
            "explain_lookup.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "GET",
                "/api/data/v9.2/contacts?$filter=createdby/fullname eq 'x'",
            ],
        ),
        (
            "explain_bind.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "--body",
                &body,
                "POST",
                "/api/data/v9.2/contacts",
            ],
        ),
        (
            "explain_columns.txt",
            vec![
                "--metadata",
                SIM_CSDL,
                "GET",
                "/api/data/v9.2/opportunities",
            ],
        ),
    ];
    for (file, args) in cases {
        let run = explain(&args);
        assert!(
            run.code == Some(0) || run.code == Some(2),
            "{}",
            run.output()
        );
        let path = golden(file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &run.stdout).expect("write golden file");
        }
        let expected =
            std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
        assert_eq!(
            run.stdout,
            expected,
            "stdout differs from {}",
            path.display()
        );
    }
}
