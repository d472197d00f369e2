//! Every credential kind end to end through the gateway to the simulator, the negative cases
//! Entra ID answers with its codes, and rotation without a failed request.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pki::test_cert;
use common::*;
use dataverse_gateway::clock::{Clock, ManualClock};
use dataverse_gateway::sim::{SimCertificate, SimConfig, SimFederated, Simulator};

fn with_cert(der: &[u8]) -> SimConfig {
    SimConfig {
        certificates: vec![SimCertificate {
            app: 0,
            der: der.to_vec(),
        }],
        ..SimConfig::default()
    }
}

/// One default tenant `contoso` against `sim` whose auth block has `credential` (indented 6).
fn tenant_with(sim: &Simulator, credential: &str) -> String {
    let app = &SimConfig::default().apps[0];
    format!(
        "tenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n      metadata_file: {SIM_CSDL}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n{credential}\n    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n",
        url = sim.base_url(),
        tid = app.tenant_id,
        cid = app.client_id,
    )
}

async fn who_am_i_ok(h: &Harness) {
    let r = h.get("WhoAmI").await;
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn client_secret_end_to_end() {
    let h = Harness::start().await;
    who_am_i_ok(&h).await;
    assert_eq!(h.sim.token_requests(), 1);
}

#[tokio::test]
async fn pem_certificate_end_to_end_with_ps256() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(365);
    let (c, k) = cert.write_pem(dir.path());
    let h = Harness::build(with_cert(&cert.der), |sim| {
        tenant_with(
            sim,
            &format!("      certificate: {{ cert_file: {c}, key_file: {k} }}"),
        )
    })
    .await;
    who_am_i_ok(&h).await;
    assert_eq!(h.sim.token_requests(), 1);
}

#[tokio::test]
async fn pkcs1_key_and_combined_pem_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(365);
    let combined = dir.path().join("combined.pem");
    std::fs::write(&combined, format!("{}{}", cert.cert_pem, cert.key_pem)).unwrap();
    let h = Harness::build(with_cert(&cert.der), |sim| {
        let c = combined.display();
        tenant_with(sim, &format!("      certificate: {{ cert_file: {c} }}"))
    })
    .await;
    who_am_i_ok(&h).await;
}

#[tokio::test]
async fn pkcs12_with_aes_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(365);
    let pfx = dir.path().join("app.pfx");
    std::fs::write(&pfx, cert.pkcs12("pfx-pass")).unwrap();
    let password = dir.path().join("pfx-password");
    std::fs::write(&password, "pfx-pass\n").unwrap();
    let h = Harness::build(with_cert(&cert.der), |sim| {
        let (p, w) = (pfx.display(), password.display());
        tenant_with(
            sim,
            &format!("      certificate: {{ pkcs12_file: {p}, password: {{ file: {w} }} }}"),
        )
    })
    .await;
    who_am_i_ok(&h).await;
}

#[tokio::test]
async fn rs256_compatibility_form_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(365);
    let (c, k) = cert.write_pem(dir.path());
    let h = Harness::build(with_cert(&cert.der), |sim| {
        let cred =
            format!("      certificate: {{ cert_file: {c}, key_file: {k}, assertion_alg: RS256 }}");
        tenant_with(sim, &cred)
    })
    .await;
    who_am_i_ok(&h).await;
}

#[tokio::test]
async fn imds_managed_identity_end_to_end_with_retries() {
    let h = Harness::build(SimConfig::default(), |sim| {
        let cid = &SimConfig::default().apps[0].client_id;
        let e = sim.imds_url();
        tenant_with(
            sim,
            &format!("      managed_identity: {{ client_id: {cid}, endpoint: \"{e}\" }}"),
        )
    })
    .await;
    h.sim.make_imds_busy(2);
    who_am_i_ok(&h).await;
}

#[tokio::test]
async fn workload_identity_end_to_end_reads_the_file_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let subject = "system:serviceaccount:agents:gateway";
    let sim_config = SimConfig {
        federated: vec![SimFederated {
            app: 0,
            subject: subject.into(),
        }],
        ..SimConfig::default()
    };
    let h = Harness::build(sim_config, |sim| {
        std::fs::write(
            &file,
            sim.federated_token(subject, Duration::from_secs(3600)),
        )
        .unwrap();
        let f = file.display();
        tenant_with(
            sim,
            &format!("      workload_identity: {{ token_file: {f} }}"),
        )
    })
    .await;
    who_am_i_ok(&h).await;
    // The platform rotates the file; once the first federated token has expired (60 min + 5 min
    // skew), only the new contents can work.
    std::fs::write(
        &file,
        h.sim
            .federated_token(subject, Duration::from_secs(3 * 3600)),
    )
    .unwrap();
    h.clock.advance(Duration::from_secs(70 * 60));
    who_am_i_ok(&h).await;
    assert_eq!(h.sim.token_requests(), 2);
}

#[tokio::test]
async fn an_unknown_federated_subject_is_a_503_naming_70021() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let h = Harness::build(SimConfig::default(), |sim| {
        std::fs::write(
            &file,
            sim.federated_token("system:serviceaccount:x:y", Duration::from_secs(600)),
        )
        .unwrap();
        tenant_with(
            sim,
            &format!(
                "      workload_identity: {{ token_file: {} }}",
                file.display()
            ),
        )
    })
    .await;
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (_, message) = error_of(r).await;
    assert!(message.contains("AADSTS70021"), "{message}");
}

#[tokio::test]
async fn an_unregistered_certificate_is_a_503_naming_700027() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(365);
    let (c, k) = cert.write_pem(dir.path());
    let h = Harness::build(SimConfig::default(), |sim| {
        tenant_with(
            sim,
            &format!("      certificate: {{ cert_file: {c}, key_file: {k} }}"),
        )
    })
    .await;
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (code, message) = error_of(r).await;
    assert_eq!(code, "GatewayTokenUnavailable");
    assert!(message.contains("AADSTS700027"), "{message}");
    assert!(message.contains("not registered"), "{message}");
    assert!(
        !message.contains("eyJ"),
        "no assertion in the message: {message}"
    );
}

#[tokio::test]
async fn assertion_clock_skew_is_a_503_naming_700024() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(365);
    let (c, k) = cert.write_pem(dir.path());
    // The simulator's clock runs an hour ahead of the gateway's.
    let sim_clock = Arc::new(ManualClock::new());
    sim_clock.advance(Duration::from_secs(3600));
    let sim = simulator(SimConfig {
        clock: sim_clock as Arc<dyn Clock>,
        ..with_cert(&cert.der)
    })
    .await;
    let yaml = tenant_with(
        &sim,
        &format!("      certificate: {{ cert_file: {c}, key_file: {k} }}"),
    );
    let gw = serve(&yaml, Arc::new(ManualClock::new())).await;
    let r = client()
        .get(format!("{}/api/data/v9.2/WhoAmI", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let (_, message) = error_of(r).await;
    assert!(message.contains("AADSTS700024"), "{message}");
    assert!(message.contains("clock"), "{message}");
}

#[tokio::test]
async fn a_secret_file_rotated_mid_run_is_used_with_zero_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, default_secret()).unwrap();
    let h = Harness::build(SimConfig::default(), |sim| {
        tenant_with(
            sim,
            &format!("      client_secret: {{ file: {} }}", secret.display()),
        )
    })
    .await;
    who_am_i_ok(&h).await;
    // Rotate: Entra gets the new secret, the file follows; the old one stops working.
    h.sim.set_secret(0, "rotated-secret-2");
    std::fs::write(&secret, "rotated-secret-2\n").unwrap();
    walk_two_lifetimes(&h).await;
}

#[tokio::test]
async fn a_certificate_rotated_mid_run_is_used_with_zero_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let old = test_cert(365);
    let (c, k) = old.write_pem(dir.path());
    let h = Harness::build(with_cert(&old.der), |sim| {
        tenant_with(
            sim,
            &format!("      certificate: {{ cert_file: {c}, key_file: {k} }}"),
        )
    })
    .await;
    who_am_i_ok(&h).await;
    // The new certificate is uploaded first, then the files are replaced (key before cert, so
    // for a moment they do not match), then the old certificate is removed from the app.
    let new = test_cert(365);
    h.sim.register_certificate(0, &new.der);
    new.write_pem(dir.path());
    h.sim.remove_certificates(0);
    h.sim.register_certificate(0, &new.der);
    walk_two_lifetimes(&h).await;
}

/// Requests every minute for two token lifetimes: every one succeeds, and new tokens were
/// obtained (with the new credential, since the old one no longer works).
async fn walk_two_lifetimes(h: &Harness) {
    let before = h.sim.token_requests();
    for minute in 1..=120 {
        h.clock.advance(Duration::from_secs(60));
        let r = h.get("WhoAmI").await;
        assert_eq!(r.status(), 200, "minute {minute}: {:?}", r.text().await);
    }
    let after = h.sim.token_requests();
    assert!(after >= before + 2, "{before} -> {after} token requests");
}
