//! `serve` and `demo`, run as the real binary: refusing to start (one error line, the YAML
//! location, no secret), proxying to the simulator, and exiting 0 on SIGTERM after the request
//! in flight.
//!
//! Every child process lives in a [`Proc`], which kills it when a test fails, and writes its
//! output to files so that a failing assertion can show what the process printed. Waiting is
//! polling with a deadline (a TCP connect, an exit status), never a fixed sleep.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::proc::{Proc, free_port, gateway, loopback, run, sim_auth, write};
use common::{client, simulator};
use dataverse_gateway::sim::{SimConfig, Simulator};
use serde_json::Value;

/// A config for one default tenant `sim` in front of `sim`, with the default app's secret in a
/// file, listening on `port`.
fn sim_config(sim: &Simulator, dir: &Path, port: u16) -> String {
    let yaml = format!(
        "listen: 127.0.0.1:{port}
tenants:
  sim:
    default: true
    dataverse:
      url: {url}
{auth}    allow:
      contacts: [GET]
    functions: [WhoAmI]
",
        url = sim.base_url(),
        auth = sim_auth(sim, dir),
    );
    write(dir, "gateway.yaml", &yaml)
}

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
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = sim_config(&sim, dir.path(), port);
    // debug logging: the secret must not leak even there
    let mut proc = Proc::spawn(
        gateway()
            .args(["serve", "--config", &config])
            .env("RUST_LOG", "debug"),
    );
    let addr = loopback(port);
    proc.wait_listening(addr).await;

    let http = client();
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
    let sim = simulator(SimConfig::default()).await;
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
    let addr = loopback(port);
    proc.wait_listening(addr).await;

    let http = client();
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
    use dataverse_gateway::cli::demo::{AGENT_TENANT, SUPPORT_KEY};
    let port = free_port();
    let mut proc = Proc::spawn(gateway().args(["demo", "--port", &port.to_string()]));
    let addr = loopback(port);
    proc.wait_listening(addr).await;

    let url = format!("http://127.0.0.1:{port}");
    let api = format!("{url}/api/data/v9.2");
    let banner = proc.stdout();
    assert!(banner.contains(&format!("gateway:   {url} ")), "{banner}");
    for line in [
        format!("curl -s -H \"Authorization: Bearer $TOKEN\" {api}/WhoAmI\n"),
        format!("curl -s -H 'Authorization: Bearer {SUPPORT_KEY}' '{api}/leads?$select=subject'\n"),
        format!("curl -s {api}/accounts\n"),
    ] {
        assert!(banner.contains(&line), "{line}\n{banner}");
    }
    // The token line names the simulated Entra ID's token endpoint.
    let token_url = banner
        .split_whitespace()
        .find(|w| w.ends_with(&format!("/{AGENT_TENANT}/oauth2/v2.0/token")))
        .unwrap_or_else(|| panic!("no token endpoint in {banner}"));
    let mcp = format!("{url}/demo/mcp");
    assert!(banner.contains(&format!("mcp:       {mcp} ")), "{banner}");
    assert!(
        banner.contains(&format!(
            "--cli {mcp} --transport http --header 'Authorization: Bearer {SUPPORT_KEY}' --method tools/list\n"
        )),
        "{banner}"
    );
    let tools = http_post_mcp(&mcp, SUPPORT_KEY).await;
    assert!(
        tools.contains("\"query\"") && !tools.contains("\"WhoAmI\""),
        "the demo's MCP URL serves the support agent's tools, without the sales agent's WhoAmI: {tools}"
    );
    let sales_tools = http_post_mcp(&mcp, &token_for_sales(token_url).await).await;
    assert!(sales_tools.contains("\"WhoAmI\""), "{sales_tools}");
    let http = client();
    let token = token_for_sales(token_url).await;
    let key = format!("Bearer {SUPPORT_KEY}");
    let sales = format!("Bearer {token}");
    let cases = [
        (&sales, "WhoAmI", 200),
        (&key, "leads?$select=subject", 200),
        (&sales, "leads?$select=subject", 403),
        (&key, "WhoAmI", 403),
    ];
    for (auth, path, status) in cases {
        let r = http
            .get(format!("{api}/{path}"))
            .header("authorization", auth.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}\n{}", proc.output());
        let body: Value = r.json().await.unwrap();
        if status == 403 {
            assert_eq!(body["error"]["code"], "GatewayPolicyDenied", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("'s policy does not allow"), "{body}");
        } else if path == "WhoAmI" {
            assert!(body["UserId"].is_string());
        }
    }
    let r = http.get(format!("{api}/accounts")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    proc.terminate();
    let status = proc.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proc.output());
}

/// `tools/list` (2026-07-28) at `url`, the raw body.
/// The demo's sales agent's Entra ID token, from the simulated Entra ID at `token_url`.
async fn token_for_sales(token_url: &str) -> String {
    use dataverse_gateway::cli::demo::{AUDIENCE, SALES_APP_ID, SALES_SECRET};
    let scope = format!("{AUDIENCE}/.default");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", SALES_APP_ID),
        ("client_secret", SALES_SECRET),
        ("scope", scope.as_str()),
    ];
    let r = client().post(token_url).form(&form).send().await.unwrap();
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn http_post_mcp(url: &str, bearer: &str) -> String {
    let msg = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    client()
        .post(url)
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .header("authorization", format!("Bearer {bearer}"))
        .body(msg)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
