//! `doctor` against the simulator (in process and as the real binary), and the App Service
//! managed identity flow, which needs environment variables and so runs as a child process.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::proc::{Proc, free_port, gateway, loopback, sim_auth};
use common::{DEFAULT_POLICY, client, install_crypto_provider, simulator};
use dataverse_gateway::cli::doctor;
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::sim::{IDENTITY_HEADER, SimConfig, Simulator};

/// The policy that matches the simulated role exactly (it reads these five tables).
const EXACT_POLICY: &str = "
    allow:
      contacts: [GET]
      accounts: [GET]
      leads: [GET]
      opportunities: [GET]
      annotations: [GET]
    functions: [WhoAmI]
";

/// Tenant `contoso` in front of `sim` with `policy`, the secret in `dir/client-secret`.
fn config_yaml(sim: &Simulator, dir: &Path, policy: &str) -> String {
    format!(
        "tenants:\n  contoso:\n    dataverse:\n      url: {url}\n{auth}{policy}",
        url = sim.base_url(),
        auth = sim_auth(sim, dir),
    )
}

async fn report(policy: &str) -> Vec<doctor::TenantReport> {
    install_crypto_provider();
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&sim, dir.path(), policy);
    let (config, _) = dataverse_gateway::config::parse_str(&yaml, "t.yaml").unwrap();
    doctor::run(&config, None, Arc::new(SystemClock))
        .await
        .unwrap()
}

#[tokio::test]
async fn doctor_passes_when_the_role_matches_the_allowlist() {
    let reports = report(EXACT_POLICY).await;
    let text = doctor::render(&reports);
    assert!(reports[0].passed(), "{text}");
    assert!(text.contains("PASS  token"), "{text}");
    assert!(text.contains("UserId="), "{text}");
    assert!(
        text.contains("read systemusers") && text.contains("(403)"),
        "{text}"
    );
    assert!(text.contains("result: passed"), "{text}");
}

#[tokio::test]
async fn doctor_reports_over_privilege_for_tables_outside_the_allowlist() {
    let reports = report("    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n").await;
    let text = doctor::render(&reports);
    assert!(!reports[0].passed(), "{text}");
    assert_eq!(
        reports[0].over_privileged,
        ["accounts", "leads", "opportunities", "annotations"],
        "{text}"
    );
    assert!(
        text.contains("FINDING: the security role is broader"),
        "{text}"
    );
    assert!(text.contains("result: FAILED"), "{text}");
}

#[tokio::test]
async fn doctor_names_the_entra_error_when_no_token_can_be_had() {
    install_crypto_provider();
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&sim, dir.path(), DEFAULT_POLICY);
    std::fs::write(dir.path().join("client-secret"), "not-the-secret-q7").unwrap();
    let (config, _) = dataverse_gateway::config::parse_str(&yaml, "t.yaml").unwrap();
    let reports = doctor::run(&config, None, Arc::new(SystemClock))
        .await
        .unwrap();
    let text = doctor::render(&reports);
    assert!(
        text.contains("FAIL  token") && text.contains("AADSTS7000215"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret-q7"), "{text}");
}

#[tokio::test]
async fn the_doctor_command_exits_0_when_clean_and_1_on_a_finding() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    for (policy, code) in [(EXACT_POLICY, 0), (DEFAULT_POLICY, 1)] {
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config_yaml(&sim, dir.path(), policy)).unwrap();
        let mut proc = Proc::spawn(gateway().arg("doctor").arg("--config").arg(&path));
        // Awaited, not blocked on: the simulator answering the doctor runs on this runtime.
        let status = proc.wait_exit(Duration::from_secs(30)).await;
        let stdout = proc.stdout();
        assert_eq!(status.code(), Some(code), "{}", proc.output());
        assert!(stdout.contains("tenant contoso"), "{stdout}");
    }
}

#[tokio::test]
async fn app_service_managed_identity_end_to_end_through_the_binary() {
    install_crypto_provider();
    let sim = simulator(SimConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app = &SimConfig::default().apps[0];
    let yaml = format!(
        "listen: 127.0.0.1:{port}\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n    auth:\n      client_id: {cid}\n      managed_identity: {{ client_id: {cid} }}\n    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n",
        url = sim.base_url(),
        cid = app.client_id,
    );
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut proc = Proc::spawn(
        gateway()
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .env("IDENTITY_ENDPOINT", sim.app_service_url())
            .env("IDENTITY_HEADER", IDENTITY_HEADER),
    );
    proc.wait_listening(loopback(port)).await;
    let http = client();
    let r = http
        .get(format!("http://127.0.0.1:{port}/api/data/v9.2/WhoAmI"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        sim.token_requests(),
        0,
        "the token came from the App Service endpoint"
    );
}
