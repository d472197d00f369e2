//! The simulated Azure Key Vault, served on the simulator's own origin (`{base}/secrets/..`,
//! `{base}/certificates/..`, `{base}/keys/..`, `api-version` 7.x): secrets with versions,
//! certificates whose secret holds the certificate and its key (PKCS#12 or PEM, by content
//! type) and whose key signs (`PS256`, `RS256`) without ever being returned.
//!
//! Access: every request needs a bearer token that the simulator's managed identity endpoint
//! issued for Key Vault's resource ([`VAULT_RESOURCE`]); 401 otherwise. Access is then checked
//! per object and role: a test revokes a role on an object ([`Simulator::vault_revoke`]) and the
//! vault answers 403 naming the caller, as Key Vault does. Faults on demand: throttling (429 with
//! `Retry-After`) and an outage (503). Every request is logged ([`Simulator::vault_requests`]),
//! so a test can prove what was and was not read.
//!
//! Invariants: the log holds method, path and status only (never a value or a token); a key's
//! private part is only used to sign; locks are short and non-async.

mod serve;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Simulator;
use super::state::lock;
pub use serve::{is_vault_path, is_vault_resource, mint, route};

/// The resource (scope without `/.default`) of Key Vault tokens in the public cloud.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";

/// A role Key Vault's RBAC grants on an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimVaultRole {
    /// Read secrets, including a certificate's secret with its key.
    SecretsUser,
    /// Read certificates (their public part).
    CertificateUser,
    /// Use keys (`sign`).
    CryptoUser,
}

/// How a certificate's secret is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCertFormat {
    /// `application/x-pkcs12`: base64 of a PKCS#12 file without a password.
    Pkcs12,
    /// `application/x-pem-file`: the PKCS#8 key and the certificate, PEM.
    Pem,
}

/// One request the vault received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimVaultRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub status: u16,
}

/// A key's versions: (version, PKCS#8 private key).
type KeyVersions = Vec<(String, Vec<u8>)>;

struct SecretVersion {
    version: String,
    value: String,
    content_type: Option<String>,
    /// `keys/NAME/VERSION` for a certificate's secret.
    kid: Option<String>,
}

struct CertVersion {
    version: String,
    der: Vec<u8>,
    key_version: String,
}

#[derive(Default)]
struct Faults {
    throttled: (usize, u64),
    down: bool,
}

/// Everything one simulated vault holds.
#[derive(Default)]
pub struct VaultState {
    secrets: Mutex<BTreeMap<String, Vec<SecretVersion>>>,
    certificates: Mutex<BTreeMap<String, Vec<CertVersion>>>,
    /// Key name → versions → PKCS#8 private key.
    keys: Mutex<BTreeMap<String, KeyVersions>>,
    /// Tokens issued for Key Vault: token → (expiry, app index).
    tokens: Mutex<HashMap<String, (Instant, usize)>>,
    revoked: Mutex<Vec<(SimVaultRole, String)>>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<SimVaultRequest>>,
}

fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The certificate's secret value in `format` (`None` when the key cannot be packed).
fn export(format: SimCertFormat, der: &[u8], key_pkcs8: &[u8]) -> Option<String> {
    match format {
        SimCertFormat::Pem => Some(format!(
            "{}{}",
            crate::identity::token::certificate::pem("PRIVATE KEY", key_pkcs8),
            crate::identity::token::certificate::pem("CERTIFICATE", der)
        )),
        SimCertFormat::Pkcs12 => {
            use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
            let chain = PrivateKeyChain::new(
                uuid::Uuid::new_v4().as_bytes().to_vec(),
                PrivateKey::from_der(key_pkcs8).ok()?,
                [p12_keystore::Certificate::from_der(der).ok()?],
            );
            let mut store = KeyStore::new();
            store.add_entry("certificate", KeyStoreEntry::PrivateKeyChain(chain));
            Some(STANDARD.encode(store.writer("").write().ok()?))
        }
    }
}

impl Simulator {
    fn vault(&self) -> &VaultState {
        &self.shared.vault
    }

    /// The vault URL (the simulator's origin).
    pub fn vault_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Adds a new current version of secret `name`; returns its version id.
    pub fn vault_put_secret(&self, name: &str, value: &str) -> String {
        let version = new_version();
        lock(&self.vault().secrets)
            .entry(name.to_string())
            .or_default()
            .push(SecretVersion {
                version: version.clone(),
                value: value.to_string(),
                content_type: None,
                kid: None,
            });
        version
    }

    /// Adds a new current version of certificate `name` with its key (PKCS#8 DER): the
    /// certificate, its key `name` and its secret `name` (exported as `format`) get a version
    /// each, as Key Vault does. The key is taken as given (a test may pass one that does not
    /// belong to the certificate). Returns the certificate's version id.
    pub fn vault_put_certificate(
        &self,
        name: &str,
        der: &[u8],
        key_pkcs8: &[u8],
        format: SimCertFormat,
    ) -> String {
        let version = new_version();
        let key_version = new_version();
        let content_type = match format {
            SimCertFormat::Pkcs12 => "application/x-pkcs12",
            SimCertFormat::Pem => "application/x-pem-file",
        };
        let value = export(format, der, key_pkcs8).unwrap_or_default();
        lock(&self.vault().keys)
            .entry(name.to_string())
            .or_default()
            .push((key_version.clone(), key_pkcs8.to_vec()));
        lock(&self.vault().certificates)
            .entry(name.to_string())
            .or_default()
            .push(CertVersion {
                version: version.clone(),
                der: der.to_vec(),
                key_version: key_version.clone(),
            });
        lock(&self.vault().secrets)
            .entry(name.to_string())
            .or_default()
            .push(SecretVersion {
                version: version.clone(),
                value,
                content_type: Some(content_type.into()),
                kid: Some(format!("keys/{name}/{key_version}")),
            });
        version
    }

    /// From now on the caller lacks `role` on object `name` (403).
    pub fn vault_revoke(&self, role: SimVaultRole, name: &str) {
        lock(&self.vault().revoked).push((role, name.to_string()));
    }

    /// Gives `role` on `name` back.
    pub fn vault_grant(&self, role: SimVaultRole, name: &str) {
        lock(&self.vault().revoked).retain(|(r, n)| !(*r == role && n == name));
    }

    /// The next `count` vault requests get 429 with `Retry-After: retry_after_secs`.
    pub fn vault_throttle(&self, count: usize, retry_after_secs: u64) {
        lock(&self.vault().faults).throttled = (count, retry_after_secs);
    }

    /// While `down`, every vault request gets 503.
    pub fn set_vault_down(&self, down: bool) {
        lock(&self.vault().faults).down = down;
    }

    /// Every vault request so far, in arrival order.
    pub fn vault_requests(&self) -> Vec<SimVaultRequest> {
        lock(&self.vault().log).clone()
    }
}
