//! Credentials from Azure Key Vault end to end through the gateway to the simulator: a client
//! secret, a certificate with its key (PKCS#12 and PEM), and a certificate whose key stays in
//! the vault and signs every assertion (PS256 and RS256); a wrong key is caught before Entra ID
//! is asked.

mod common;

use common::pki::test_cert;
use common::vault::*;
use common::*;
use dataverse_gateway::sim::{SimCertFormat, SimConfig, SimFederated};

async fn who_am_i_ok(h: &Harness) {
    let r = h.get("WhoAmI").await;
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn a_client_secret_from_the_vault_reaches_entra_and_the_org_gets_the_token() {
    let h = Harness::build(SimConfig::default(), |sim| {
        sim.vault_put_secret("contoso-dv", &default_secret());
        vault_yaml(sim, &secret_form(sim, "contoso-dv"))
    })
    .await;
    who_am_i_ok(&h).await;
    assert_eq!(
        h.sim.token_requests(),
        1,
        "Entra accepted the secret at once"
    );
    assert_eq!(vault_log(&h.sim), ["GET /secrets/contoso-dv 200"]);
    let s = status(&h);
    assert!(s.version.is_some() && s.error.is_none(), "{s:?}");
    let bearer = h.upstream_requests()[0].headers["authorization"].clone();
    assert!(bearer.to_str().unwrap().starts_with("Bearer eyJ"));
}

#[tokio::test]
async fn a_certificate_with_its_key_from_the_vault_in_either_format() {
    for format in [SimCertFormat::Pkcs12, SimCertFormat::Pem] {
        let cert = test_cert(365);
        let h = Harness::build(registered(&[&cert]), |sim| {
            sim.vault_put_certificate("contoso-cert", &cert.der, &pkcs8(&cert), format);
            vault_yaml(
                sim,
                &certificate_form(sim, "key_vault", "contoso-cert", None),
            )
        })
        .await;
        who_am_i_ok(&h).await;
        assert_eq!(h.sim.token_requests(), 1, "{format:?}");
        // The key comes with the certificate's secret; nothing is signed by the vault.
        assert_eq!(
            vault_log(&h.sim),
            ["GET /secrets/contoso-cert 200"],
            "{format:?}"
        );
        let left = h.gateway.snapshot().tenants[0]
            .token
            .certificate_seconds_left();
        assert!(left.is_some_and(|s| s > 364 * 86_400), "{left:?}");
    }
}

#[tokio::test]
async fn a_key_that_never_leaves_the_vault_signs_the_assertion_ps256_and_rs256() {
    for alg in [None, Some("RS256")] {
        let cert = test_cert(365);
        let h = vault_key_gateway(&cert, &cert, alg, |_| {}).await;
        who_am_i_ok(&h).await;
        assert_eq!(
            h.sim.token_requests(),
            1,
            "Entra verified the vault's signature ({alg:?})"
        );
        let log = vault_log(&h.sim);
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(log[0], "GET /certificates/contoso-key 200");
        assert!(
            log[1].starts_with("POST /keys/contoso-key/") && log[1].ends_with("/sign 200"),
            "{log:?}"
        );
        assert!(
            !log.iter().any(|l| l.contains("/secrets/")),
            "the private key was never requested: {log:?}"
        );
        let left = h.gateway.snapshot().tenants[0]
            .token
            .certificate_seconds_left();
        assert!(
            left.is_some_and(|s| s > 364 * 86_400),
            "the expiry gauge: {left:?}"
        );
    }
}

#[tokio::test]
async fn a_key_that_does_not_belong_to_the_certificate_is_reported_before_entra_is_asked() {
    let cert = test_cert(365);
    let other = test_cert(365);
    let h = vault_key_gateway(&cert, &other, None, |_| {}).await;
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (code, message) = error_of(r).await;
    assert_eq!(code, "GatewayTokenUnavailable");
    assert!(
        message.contains("does not verify against the certificate"),
        "{message}"
    );
    assert!(
        message.contains("the key does not belong to the certificate"),
        "{message}"
    );
    assert!(message.contains("Entra ID was not asked"), "{message}");
    assert_eq!(h.sim.token_requests(), 0, "Entra ID was not asked");
    assert!(
        status(&h)
            .error
            .is_some_and(|e| e.contains("does not verify"))
    );
}

#[tokio::test]
async fn the_gateway_signs_in_to_the_vault_with_workload_identity() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let subject = "system:serviceaccount:dataverse-gateway:dataverse-gateway";
    let sim_config = SimConfig {
        federated: vec![SimFederated {
            app: 0,
            subject: subject.into(),
        }],
        ..SimConfig::default()
    };
    let h = Harness::build(sim_config, |sim| {
        std::fs::write(&file, sim.federated_token(subject, std::time::Duration::from_secs(3600))).unwrap();
        sim.vault_put_secret("contoso-dv", &default_secret());
        let app = &SimConfig::default().apps[0];
        let identity = format!(
            "workload_identity: {{ token_file: {}, tenant_id: {}, client_id: {}, authority: \"{}\" }}",
            file.display(),
            app.tenant_id,
            app.client_id,
            sim.base_url()
        );
        vault_yaml_with(sim, &identity, &secret_form(sim, "contoso-dv"))
    })
    .await;
    who_am_i_ok(&h).await;
    assert_eq!(
        h.sim.token_requests(),
        2,
        "one token for Key Vault, one for Dataverse"
    );
    assert_eq!(vault_log(&h.sim), ["GET /secrets/contoso-dv 200"]);
}
