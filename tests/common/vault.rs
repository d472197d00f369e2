//! The simulated Key Vault in front of a gateway: a config whose tenant `contoso` takes its
//! credential from the simulator's vault and whose `key_vault:` identity is the simulator's
//! managed identity endpoint, and the small waits and readings the Key Vault tests share.

use std::time::Duration;

use dataverse_gateway::identity::vault::VaultStatus;
use dataverse_gateway::sim::{SimCertFormat, SimCertificate, SimConfig, Simulator};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::harness::Harness;
use super::pki::TestCert;
use super::{DEADLINE, SIM_CSDL};

/// The config of one default tenant `contoso` whose `auth` ends with `credential` (indented 6),
/// signing in to the simulator's vault with its managed identity endpoint.
pub fn vault_yaml(sim: &Simulator, credential: &str) -> String {
    let identity = format!("managed_identity: {{ endpoint: \"{}\" }}", sim.imds_url());
    vault_yaml_with(sim, &identity, credential)
}

/// [`vault_yaml`] with `identity` (one line) as `key_vault.identity`.
pub fn vault_yaml_with(sim: &Simulator, identity: &str, credential: &str) -> String {
    let app = &SimConfig::default().apps[0];
    format!(
        "key_vault:\n  identity:\n    {identity}\ntenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n      metadata_file: {SIM_CSDL}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n{credential}\n    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n",
        url = sim.base_url(),
        tid = app.tenant_id,
        cid = app.client_id,
    )
}

/// `client_secret: { key_vault: { vault, secret: NAME, refresh } }`
pub fn secret_form(sim: &Simulator, name: &str) -> String {
    format!(
        "      client_secret: {{ key_vault: {{ vault: \"{}\", secret: {name}, refresh: 5m }} }}",
        sim.vault_url()
    )
}

/// `certificate: { FORM: { vault, certificate: NAME, refresh } [, assertion_alg] }`
pub fn certificate_form(sim: &Simulator, form: &str, name: &str, alg: Option<&str>) -> String {
    let alg = alg
        .map(|a| format!(", assertion_alg: {a}"))
        .unwrap_or_default();
    format!(
        "      certificate: {{ {form}: {{ vault: \"{}\", certificate: {name}, refresh: 5m }}{alg} }}",
        sim.vault_url()
    )
}

/// A simulator config with `certs` registered on app 0.
pub fn registered(certs: &[&TestCert]) -> SimConfig {
    SimConfig {
        certificates: certs
            .iter()
            .map(|c| SimCertificate {
                app: 0,
                der: c.der.clone(),
            })
            .collect(),
        ..SimConfig::default()
    }
}

/// A gateway whose tenant signs its assertions with Key Vault's `sign` on the certificate
/// `contoso-key` (`key_vault_key`, `alg` as `assertion_alg`): `cert` is registered in Entra and
/// stored in the vault with `key`'s private key; `prepare` runs on the simulator first.
pub async fn vault_key_gateway(
    cert: &TestCert,
    key: &TestCert,
    alg: Option<&str>,
    prepare: impl FnOnce(&Simulator),
) -> Harness {
    Harness::build(registered(&[cert]), |sim| {
        sim.vault_put_certificate("contoso-key", &cert.der, &pkcs8(key), SimCertFormat::Pkcs12);
        prepare(sim);
        vault_yaml(
            sim,
            &certificate_form(sim, "key_vault_key", "contoso-key", alg),
        )
    })
    .await
}

/// The certificate's private key, PKCS#8 DER (what the vault keeps).
pub fn pkcs8(cert: &TestCert) -> Vec<u8> {
    match PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap() {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("rcgen writes PKCS#8"),
    }
}

/// The vault state of the default tenant.
pub fn status(h: &Harness) -> VaultStatus {
    let snapshot = h.gateway.snapshot();
    snapshot.tenants[0]
        .token
        .vault()
        .expect("a vault-backed tenant")
        .status()
}

/// Waits (within [`DEADLINE`]) until the tenant uses `version`: the background poll reads the
/// vault on its own schedule, with no event to await.
pub async fn wait_for_version(h: &Harness, version: &str) {
    let polled = async {
        while status(h).version.as_deref() != Some(version) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(DEADLINE, polled).await.is_err() {
        panic!(
            "version {version} not in use after {DEADLINE:?}: {:?}",
            status(h)
        );
    }
}

/// `(method path status)` of every vault request, one string each.
pub fn vault_log(sim: &Simulator) -> Vec<String> {
    sim.vault_requests()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect()
}
