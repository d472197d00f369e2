//! Rotation in Key Vault without a restart: a new version of the secret, of the certificate and
//! of the certificate's key is in use within one refresh period (5 minutes here) with no failed
//! request, and an Entra ID rejection of the credential makes the gateway re-read it at once
//! (at most once a minute). Time moves on the injected clock.

mod common;

use std::time::Duration;

use common::pki::{TestCert, test_cert};
use common::vault::*;
use common::*;
use dataverse_gateway::sim::{SimCertFormat, SimConfig};

async fn who_am_i_ok(h: &Harness, when: &str) {
    let r = h.get("WhoAmI").await;
    let status = r.status();
    assert_eq!(
        status,
        200,
        "{when}: {}",
        r.text().await.unwrap_or_default()
    );
}

/// One refresh period of requests, one a minute, every one served; then the new version is in
/// use, and the next token request (Dataverse drops the old tokens) succeeds at the first try.
async fn walk_one_refresh_period(h: &Harness, new_version: &str) {
    for minute in 1..=5 {
        h.clock.advance(Duration::from_secs(60));
        who_am_i_ok(h, &format!("minute {minute}")).await;
    }
    wait_for_version(h, new_version).await;
    let before = h.sim.token_requests();
    h.sim.revoke_tokens();
    who_am_i_ok(h, "after the rotation").await;
    assert_eq!(
        h.sim.token_requests(),
        before + 1,
        "the new version was accepted at the first token request"
    );
}

/// Registers `new` on the app alone (the old certificate stops working).
fn only_registered(h: &Harness, new: &TestCert) {
    h.sim.remove_certificates(0);
    h.sim.register_certificate(0, &new.der);
}

#[tokio::test]
async fn a_new_secret_version_is_used_within_one_refresh_period() {
    let h = Harness::build(SimConfig::default(), |sim| {
        sim.vault_put_secret("contoso-dv", &default_secret());
        vault_yaml(sim, &secret_form(sim, "contoso-dv"))
    })
    .await;
    who_am_i_ok(&h, "before").await;
    let v2 = h.sim.vault_put_secret("contoso-dv", "rotated-secret-2");
    h.sim.set_secret(0, "rotated-secret-2");
    walk_one_refresh_period(&h, &v2).await;
}

#[tokio::test]
async fn a_new_certificate_version_is_used_within_one_refresh_period() {
    let old = test_cert(365);
    let h = Harness::build(registered(&[&old]), |sim| {
        sim.vault_put_certificate(
            "contoso-cert",
            &old.der,
            &pkcs8(&old),
            SimCertFormat::Pkcs12,
        );
        vault_yaml(
            sim,
            &certificate_form(sim, "key_vault", "contoso-cert", None),
        )
    })
    .await;
    who_am_i_ok(&h, "before").await;
    let new = test_cert(730);
    let v2 =
        h.sim
            .vault_put_certificate("contoso-cert", &new.der, &pkcs8(&new), SimCertFormat::Pem);
    only_registered(&h, &new);
    walk_one_refresh_period(&h, &v2).await;
    let left = h.gateway.snapshot().tenants[0]
        .token
        .certificate_seconds_left();
    assert!(
        left.is_some_and(|s| s > 700 * 86_400),
        "the gauge follows: {left:?}"
    );
}

/// A gateway signing with a `key_vault_key` that has served once; then a new key version is put
/// in the vault and only its certificate is registered in Entra. Returns the new version.
async fn a_vault_key_rotated_in_vault_and_entra() -> (Harness, String) {
    let old = test_cert(365);
    let h = vault_key_gateway(&old, &old, None, |_| {}).await;
    who_am_i_ok(&h, "before").await;
    let new = test_cert(365);
    let v2 =
        h.sim
            .vault_put_certificate("contoso-key", &new.der, &pkcs8(&new), SimCertFormat::Pkcs12);
    only_registered(&h, &new);
    (h, v2)
}

#[tokio::test]
async fn a_new_key_version_signs_within_one_refresh_period() {
    let (h, v2) = a_vault_key_rotated_in_vault_and_entra().await;
    walk_one_refresh_period(&h, &v2).await;
    let signs: Vec<String> = vault_log(&h.sim)
        .into_iter()
        .filter(|l| l.ends_with("/sign 200"))
        .collect();
    assert_eq!(signs.len(), 2, "{signs:?}");
    assert_ne!(
        signs[0], signs[1],
        "the second assertion was signed by the new key version"
    );
    assert!(!vault_log(&h.sim).iter().any(|l| l.contains("/secrets/")));
}

#[tokio::test]
async fn an_entra_rejection_rereads_the_secret_at_once_but_at_most_once_a_minute() {
    let h = Harness::build(SimConfig::default(), |sim| {
        sim.vault_put_secret("contoso-dv", &default_secret());
        vault_yaml(sim, &secret_form(sim, "contoso-dv"))
    })
    .await;
    who_am_i_ok(&h, "before").await;
    // Rotated in Entra and the vault; the gateway has not polled yet.
    let v2 = h.sim.vault_put_secret("contoso-dv", "rotated-secret-2");
    h.sim.set_secret(0, "rotated-secret-2");
    h.sim.revoke_tokens();
    let before = h.sim.token_requests();
    who_am_i_ok(&h, "right after the rotation").await;
    assert_eq!(
        h.sim.token_requests(),
        before + 2,
        "refused once, then the new version"
    );
    assert_eq!(status(&h).version.as_deref(), Some(v2.as_str()));
    let reads = vault_log(&h.sim).len();
    assert_eq!(reads, 2, "{:?}", vault_log(&h.sim));

    // Rotated again within the minute: no second forced read yet.
    h.clock.advance(Duration::from_secs(10));
    let v3 = h.sim.vault_put_secret("contoso-dv", "rotated-secret-3");
    h.sim.set_secret(0, "rotated-secret-3");
    h.sim.revoke_tokens();
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (_, message) = error_of(r).await;
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert_eq!(
        vault_log(&h.sim).len(),
        reads,
        "no re-read within the minute"
    );
    // A minute on (and past the token backoff), the rejection re-reads again.
    h.clock.advance(Duration::from_secs(55));
    who_am_i_ok(&h, "a minute later").await;
    assert_eq!(status(&h).version.as_deref(), Some(v3.as_str()));
}

#[tokio::test]
async fn an_entra_rejection_rereads_a_rotated_vault_key_at_once() {
    let (h, v2) = a_vault_key_rotated_in_vault_and_entra().await;
    h.sim.revoke_tokens();
    who_am_i_ok(&h, "right after the rotation").await;
    assert_eq!(status(&h).version.as_deref(), Some(v2.as_str()));
}
