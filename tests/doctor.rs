//! `doctor` against the simulator (in process and as the real binary), and the App Service
//! managed identity flow, which needs environment variables and so runs as a child process.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::DEFAULT_POLICY;
use dataverse_gateway::cli::doctor;
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::sim::{IDENTITY_HEADER, SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_dataverse-gateway");

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

fn config_yaml(sim: &Simulator, dir: &Path, policy: &str) -> String {
    let app = &SimConfig::default().apps[0];
    let secret = dir.join("secret");
    std::fs::write(&secret, &app.secret).unwrap();
    format!(
        "tenants:\n  contoso:\n    dataverse:\n      url: {url}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n      client_secret: {{ file: {s} }}\n{policy}",
        url = sim.base_url(),
        tid = app.tenant_id,
        cid = app.client_id,
        s = secret.display(),
    )
}

async fn report(policy: &str) -> Vec<doctor::TenantReport> {
    dataverse_gateway::identity::tls::install_crypto_provider();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
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
    dataverse_gateway::identity::tls::install_crypto_provider();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&sim, dir.path(), DEFAULT_POLICY);
    std::fs::write(dir.path().join("secret"), "not-the-secret-q7").unwrap();
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
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (policy, code) in [(EXACT_POLICY, 0), (DEFAULT_POLICY, 1)] {
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, config_yaml(&sim, dir.path(), policy)).unwrap();
        let out = tokio::process::Command::new(BIN)
            .args(["doctor", "--config"])
            .arg(&path)
            .env_remove("RUST_LOG")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("tenant contoso"), "{stdout}");
    }
}

#[tokio::test]
async fn app_service_managed_identity_end_to_end_through_the_binary() {
    dataverse_gateway::identity::tls::install_crypto_provider();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = &SimConfig::default().apps[0];
    let yaml = format!(
        "listen: 127.0.0.1:{port}\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n    auth:\n      client_id: {cid}\n      managed_identity: {{ client_id: {cid} }}\n    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n",
        url = sim.base_url(),
        cid = app.client_id,
    );
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env("IDENTITY_ENDPOINT", sim.app_service_url())
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the gateway did not start listening"
        );
        assert!(child.try_wait().unwrap().is_none(), "the gateway exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
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
    child.kill().await.unwrap();
}
