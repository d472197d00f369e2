//! Key Vault failures: 403 names the missing role and the identity that asked, 404 names the
//! object, 429 is honoured until its `Retry-After`, an unreachable vault says so; a vault outage
//! is invisible while the cached token is valid and `/readyz` reports it per tenant; no secret
//! or token shows in a log line, a response body or a metric.

mod common;

use std::time::Duration;

use common::hostile::Log;
use common::pki::test_cert;
use common::proc::free_port;
use common::vault::*;
use common::*;
use dataverse_gateway::ops::admin::{not_ready, vault_states};
use dataverse_gateway::sim::{DEFAULT_CLIENT_ID, SimConfig, SimVaultRole};
use dataverse_gateway::telemetry::metrics;

/// Captures every log line (debug and up) of this current-thread test.
fn capture_logs() -> (Log, tracing::subscriber::DefaultGuard) {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

async fn refused(h: &Harness) -> String {
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (code, message) = error_of(r).await;
    assert_eq!(code, "GatewayTokenUnavailable");
    message
}

fn metrics_text(h: &Harness) -> String {
    metrics::render(&h.gateway.metrics.registry(h.gateway.clone()))
}

async fn secret_harness() -> Harness {
    Harness::build(SimConfig::default(), |sim| {
        sim.vault_put_secret("contoso-dv", &default_secret());
        vault_yaml(sim, &secret_form(sim, "contoso-dv"))
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_revoked_role_is_named_with_the_caller_while_the_cached_token_keeps_serving() {
    let (log, _guard) = capture_logs();
    let h = secret_harness().await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    h.sim.vault_revoke(SimVaultRole::SecretsUser, "contoso-dv");
    h.clock.advance(Duration::from_secs(301));
    assert_eq!(
        h.get("WhoAmI").await.status(),
        200,
        "the cached token serves"
    );
    let error = within("the scheduled read to fail", async {
        loop {
            if let Some(e) = status(&h).error {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        error.contains("grant it the Key Vault Secrets User role on the secret `contoso-dv`"),
        "{error}"
    );
    assert!(
        error.contains("the system-assigned managed identity"),
        "{error}"
    );
    assert!(
        error.contains(&format!("appid={DEFAULT_CLIENT_ID}")),
        "{error}"
    );
    assert!(error.contains("HTTP 403, Forbidden"), "{error}");
    let snapshot = h.gateway.snapshot();
    assert!(
        not_ready(&snapshot, false, None).is_empty(),
        "the token is valid: ready"
    );
    let states = vault_states(&snapshot);
    assert_eq!(states["contoso"]["state"], "failing", "{states}");
    assert!(states["contoso"]["version"].is_string(), "{states}");
    assert!(log.lines_with("the version in hand stays in use") >= 1);
    let text = metrics_text(&h);
    assert!(
        text.contains("dataverse_gateway_key_vault_up{tenant=\"contoso\"} 0"),
        "{text}"
    );
    let everything = format!("{}\n{}\n{states}", log.text(), metrics_text(&h));
    assert!(
        !everything.contains(&default_secret()),
        "no secret value anywhere"
    );
    assert!(!everything.contains("eyJ"), "no token anywhere");
}

#[tokio::test]
async fn signing_and_certificate_refusals_name_their_roles() {
    let cases = [
        (
            SimVaultRole::CryptoUser,
            "Key Vault Crypto User role on the key `contoso-key`",
        ),
        (
            SimVaultRole::CertificateUser,
            "Key Vault Certificate User (or Key Vault Reader) role on the certificate `contoso-key`",
        ),
    ];
    for (role, expected) in cases {
        let cert = test_cert(365);
        let h = vault_key_gateway(&cert, &cert, None, |sim| {
            sim.vault_revoke(role, "contoso-key");
        })
        .await;
        let message = refused(&h).await;
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("appid="), "{message}");
        assert_eq!(h.sim.token_requests(), 0, "Entra ID was not asked");
    }
}

#[tokio::test]
async fn a_missing_object_is_named() {
    let h = Harness::build(SimConfig::default(), |sim| {
        vault_yaml(sim, &secret_form(sim, "contoso-dv"))
    })
    .await;
    let message = refused(&h).await;
    assert!(
        message.contains("has no secret `contoso-dv` (HTTP 404, SecretNotFound)"),
        "{message}"
    );
    assert!(message.contains(&h.sim.vault_url()), "{message}");
}

#[tokio::test]
async fn throttling_is_honoured_until_retry_after() {
    let h = Harness::build(SimConfig::default(), |sim| {
        sim.vault_put_secret("contoso-dv", &default_secret());
        sim.vault_throttle(1, 120);
        vault_yaml(sim, &secret_form(sim, "contoso-dv"))
    })
    .await;
    let message = refused(&h).await;
    assert!(
        message.contains("throttling requests (HTTP 429): retry after 120 s"),
        "{message}"
    );
    assert_eq!(vault_log(&h.sim), ["GET /secrets/contoso-dv 429"]);
    // Past the token backoff but not Retry-After: the vault is not asked.
    h.clock.advance(Duration::from_secs(60));
    let message = refused(&h).await;
    assert!(message.contains("retry after 120 s"), "{message}");
    assert_eq!(vault_log(&h.sim).len(), 1, "{:?}", vault_log(&h.sim));
    h.clock.advance(Duration::from_secs(61));
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    assert_eq!(vault_log(&h.sim).len(), 2);
}

#[tokio::test]
async fn an_unreachable_vault_says_so() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let h = Harness::build(SimConfig::default(), |sim| {
        let form = format!(
            "      client_secret: {{ key_vault: {{ vault: \"{closed}\", secret: contoso-dv }} }}"
        );
        vault_yaml(sim, &form)
    })
    .await;
    let message = refused(&h).await;
    assert!(
        message.contains(&format!("Key Vault {closed} is unreachable")),
        "{message}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_vault_outage_is_invisible_while_the_cached_token_is_valid() {
    let (log, _guard) = capture_logs();
    let h = secret_harness().await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    let version = status(&h).version;
    h.sim.set_vault_down(true);
    for minute in 1..=20 {
        h.clock.advance(Duration::from_secs(60));
        assert_eq!(h.get("WhoAmI").await.status(), 200, "minute {minute}");
    }
    within("the outage to be noticed", async {
        while status(&h).error.is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let s = status(&h);
    assert!(
        s.error.as_deref().is_some_and(|e| e.contains("HTTP 503")),
        "{s:?}"
    );
    assert_eq!(s.version, version, "the version in hand stays");
    assert!(not_ready(&h.gateway.snapshot(), false, None).is_empty());
    // The vault comes back: the next scheduled read clears the error.
    h.sim.set_vault_down(false);
    h.clock.advance(Duration::from_secs(31));
    within("the vault to be read again", async {
        while status(&h).error.is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let text = metrics_text(&h);
    assert!(
        text.contains("dataverse_gateway_key_vault_up{tenant=\"contoso\"} 1"),
        "{text}"
    );
    let everything = format!("{}\n{}", log.text(), text);
    assert!(
        !everything.contains(&default_secret()),
        "no secret value anywhere"
    );
}

#[tokio::test]
async fn a_throttled_signature_is_not_asked_for_again_before_retry_after() {
    let cert = test_cert(365);
    let h = vault_key_gateway(&cert, &cert, None, |_| {}).await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    let signs_of = |h: &Harness| {
        vault_log(&h.sim)
            .iter()
            .filter(|l| l.contains("/sign "))
            .count()
    };
    assert_eq!(signs_of(&h), 1);
    h.sim.vault_throttle(1, 120);
    h.sim.revoke_tokens();
    let message = refused(&h).await;
    assert!(
        message.contains("throttling requests (HTTP 429): retry after 120 s"),
        "{message}"
    );
    assert_eq!(signs_of(&h), 2);
    h.clock.advance(Duration::from_secs(60));
    let message = refused(&h).await;
    assert!(message.contains("retry after 120 s"), "{message}");
    assert_eq!(signs_of(&h), 2, "no signature asked for before Retry-After");
    h.clock.advance(Duration::from_secs(61));
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    assert_eq!(signs_of(&h), 3);
}
