//! `check` validates the Key Vault forms offline, and `doctor` adds the vault's steps: the
//! gateway's vault token, the object with its version and expiry, and for `key_vault_key` a
//! test signature verified against the certificate.

mod common;

use std::sync::Arc;

use common::pki::test_cert;
use common::proc::check;
use common::vault::*;
use common::{install_crypto_provider, simulator};
use dataverse_gateway::cli::doctor;
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::sim::{SimCertFormat, SimConfig, SimVaultRole, Simulator};

async fn doctor_text(sim: &Simulator, credential: &str) -> (bool, String) {
    install_crypto_provider();
    let yaml = vault_yaml(sim, credential);
    let (config, _) = dataverse_gateway::config::parse_str(&yaml, "t.yaml").unwrap();
    let reports = doctor::run(&config, None, Arc::new(SystemClock))
        .await
        .unwrap();
    // The least-privilege probe is not what these tests are about (the simulated role reads
    // more than this policy allows): only the vault and token steps count.
    let failed = reports[0].steps.iter().any(|s| {
        (s.name.starts_with("vault") || s.name == "token") && s.status == doctor::Status::Fail
    });
    (failed, doctor::render(&reports))
}

#[tokio::test]
async fn doctor_checks_the_vault_token_the_object_and_a_test_signature() {
    let cert = test_cert(365);
    let sim = simulator(registered(&[&cert])).await;
    let version = sim.vault_put_certificate(
        "contoso-key",
        &cert.der,
        &pkcs8(&cert),
        SimCertFormat::Pkcs12,
    );
    let form = certificate_form(&sim, "key_vault_key", "contoso-key", None);
    let (failed, text) = doctor_text(&sim, &form).await;
    assert!(!failed, "{text}");
    assert!(text.contains("PASS  vault token"), "{text}");
    assert!(
        text.contains(
            "the system-assigned managed identity (scope https://vault.azure.net/.default)"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "certificate key contoso-key found, version {version}, certificate CN="
        )),
        "{text}"
    );
    assert!(text.contains("PASS  vault signature"), "{text}");
    assert!(
        text.contains("PS256 test signature by key contoso-key version"),
        "{text}"
    );
    assert!(text.contains("verifies against the certificate"), "{text}");
    assert!(text.contains("PASS  token"), "{text}");
    // 364 or 365 days, by when in the second the certificate was made.
    assert!(
        text.contains("PASS  certificate            valid for 36"),
        "{text}"
    );
}

#[tokio::test]
async fn doctor_fails_the_signature_step_for_a_wrong_key_and_names_a_missing_role() {
    let cert = test_cert(365);
    let other = test_cert(365);
    let sim = simulator(registered(&[&cert])).await;
    sim.vault_put_certificate(
        "contoso-key",
        &cert.der,
        &pkcs8(&other),
        SimCertFormat::Pkcs12,
    );
    let form = certificate_form(&sim, "key_vault_key", "contoso-key", None);
    let (failed, text) = doctor_text(&sim, &form).await;
    assert!(failed, "{text}");
    assert!(text.contains("FAIL  vault signature"), "{text}");
    assert!(
        text.contains("the key does not belong to the certificate"),
        "{text}"
    );
    assert_eq!(sim.token_requests(), 0, "Entra ID was never asked: {text}");

    sim.vault_put_secret("contoso-dv", "s");
    sim.vault_revoke(SimVaultRole::SecretsUser, "contoso-dv");
    let (failed, text) = doctor_text(&sim, &secret_form(&sim, "contoso-dv")).await;
    assert!(failed, "{text}");
    assert!(!text.contains("PASS  token"), "{text}");
    assert!(text.contains("FAIL  vault object"), "{text}");
    assert!(text.contains("Key Vault Secrets User"), "{text}");
}

#[tokio::test]
async fn doctor_shows_a_secret_version_without_its_value() {
    let sim = simulator(SimConfig::default()).await;
    let secret = SimConfig::default().apps[0].secret.clone();
    let version = sim.vault_put_secret("contoso-dv", &secret);
    let (failed, text) = doctor_text(&sim, &secret_form(&sim, "contoso-dv")).await;
    assert!(!failed, "{text}");
    assert!(
        text.contains(&format!(
            "secret contoso-dv found, version {version}, no expiry set"
        )),
        "{text}"
    );
    assert!(!text.contains(&secret), "{text}");
}

#[test]
fn check_validates_the_vault_forms_offline() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let tenant = |name: &str, credential: &str| {
        format!(
            "  {name}:\n    dataverse: {{ url: https://{name}.crm.dynamics.com }}\n    auth:\n      tenant_id: t\n      client_id: c-{name}\n{credential}\n    allow: {{ contacts: [GET] }}\n"
        )
    };
    let text = format!(
        "key_vault:\n  identity:\n    managed_identity: {{ client_id: 00000000-0000-0000-0000-000000000001 }}\ntenants:\n{}{}{}",
        tenant(
            "a",
            "      client_secret: { key_vault: { vault: https://nowhere-at-all.vault.azure.net, secret: a-dv } }"
        ),
        tenant(
            "b",
            "      certificate: { key_vault: { vault: https://nowhere-at-all.vault.azure.net, certificate: b-dv, refresh: 10m } }"
        ),
        tenant(
            "c",
            "      certificate: { key_vault_key: { vault: https://nowhere-at-all.vault.azure.net, certificate: c-dv }, assertion_alg: RS256 }"
        ),
    );
    std::fs::write(&good, text).unwrap();
    let out = check(good.to_str().unwrap());
    assert_eq!(out.code, Some(0), "{}", out.output());
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!("tenants:\n{}", tenant("a", "      client_secret: { key_vault: { vault: http://v.vault.azure.net, secret: a-dv } }")),
    )
    .unwrap();
    let out = check(bad.to_str().unwrap());
    assert_eq!(out.code, Some(1), "{}", out.output());
    assert!(
        out.output().contains(":7:44: tenants.a.auth.client_secret.key_vault.vault: `http://v.vault.azure.net` must be https"),
        "{}",
        out.output()
    );
}

#[tokio::test]
async fn doctor_warns_about_a_vault_certificate_close_to_expiry() {
    let cert = test_cert(10);
    let sim = simulator(registered(&[&cert])).await;
    sim.vault_put_certificate("contoso-cert", &cert.der, &pkcs8(&cert), SimCertFormat::Pem);
    let form = certificate_form(&sim, "key_vault", "contoso-cert", None);
    let (failed, text) = doctor_text(&sim, &form).await;
    assert!(!failed, "{text}");
    assert!(text.contains("WARN  certificate"), "{text}");
    // 9 or 10 days, by when in the second the certificate was made.
    let days = ["9", "10"].map(|d| format!("in Key Vault expires in {d} day(s)"));
    assert!(days.iter().any(|d| text.contains(d)), "{text}");
}
