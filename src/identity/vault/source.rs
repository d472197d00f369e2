//! One vault-backed credential, live: the current version of its secret, certificate or
//! certificate key, re-read on a schedule and when Entra ID rejects it.
//!
//! Invariants:
//! - the object is read at first use, then again once `refresh` has passed (a jittered 80-100%
//!   of it, so replicas spread their reads); a new version is used by the next token request;
//! - when Entra ID rejects the credential (invalid or expired secret, unknown certificate or bad
//!   signature) the object is re-read at once, at most once a minute, and the token request is
//!   retried once when the version changed;
//! - a failed read keeps the last good version in use (a vault outage is invisible while the
//!   token or the version in hand is good); it is retried after [`RETRY_AFTER_FAILURE`], or
//!   after Key Vault's `Retry-After` when throttled — never earlier;
//! - the private key of `key_vault_key` is never requested: only the certificate and `sign`;
//!   every signature is verified against the certificate before the assertion is sent;
//! - the version in use is logged when it changes, never a value; errors carry no secret.
//!
//! The token requests made with the material are in [`super::assertion`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::client::{self, Call, Operation, VaultError};
use super::material::{self, PublicCertificate};
use crate::clock::Clock;
use crate::config::secret::Secret;
use crate::config::vault::{VaultCredential, VaultIdentity, VaultObject};
use crate::config::{Auth, Credential};
use crate::identity::token::TokenSource;
use crate::identity::token::certificate::Certificate;

/// Entra ID codes that mean "this credential is wrong": invalid secret, expired secret,
/// unknown certificate or invalid signature.
pub const REJECTS_CREDENTIAL: [u32; 3] = [7_000_215, 7_000_222, 700_027];
/// Forced re-reads (after a rejection) are at least this far apart.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(60);
/// A failed read is retried after this long (unless Key Vault asked for longer).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// What the vault object is, as read.
pub enum Material {
    Secret {
        value: Secret,
        version: String,
        /// `attributes.exp`, Unix seconds.
        expires: Option<i64>,
    },
    Certificate {
        cert: Arc<Certificate>,
        version: String,
    },
    Key {
        cert: PublicCertificate,
        version: String,
        key_name: String,
        key_version: String,
    },
}

impl Material {
    pub fn version(&self) -> &str {
        match self {
            Material::Secret { version, .. }
            | Material::Certificate { version, .. }
            | Material::Key { version, .. } => version,
        }
    }

    /// Seconds until the certificate's `notAfter`; `None` for a secret.
    pub fn certificate_seconds_left(&self, now: SystemTime) -> Option<i64> {
        match self {
            Material::Secret { .. } => None,
            Material::Certificate { cert, .. } => Some(cert.seconds_left(now)),
            Material::Key { cert, .. } => Some(cert.seconds_left(now)),
        }
    }

    /// The certificate's subject; `None` for a secret.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Material::Secret { .. } => None,
            Material::Certificate { cert, .. } => Some(&cert.subject),
            Material::Key { cert, .. } => Some(&cert.subject),
        }
    }
}

/// The vault's state for `/readyz` and `doctor`: never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultStatus {
    pub vault: String,
    /// `secret NAME`, `certificate NAME`, `certificate key NAME`.
    pub object: String,
    /// The version in use, once one was read.
    pub version: Option<String>,
    /// The last read or signature failed with this (cleared by the next success).
    pub error: Option<String>,
}

#[derive(Default)]
struct State {
    material: Option<Arc<Material>>,
    next_read: Option<Instant>,
    last_forced: Option<Instant>,
    error: Option<VaultError>,
}

pub struct VaultSource {
    pub(super) config: VaultCredential,
    pub(super) http: reqwest::Client,
    pub(super) clock: Arc<dyn Clock>,
    /// The gateway's own token for Key Vault.
    token: Arc<TokenSource>,
    /// Who asks Key Vault, for messages.
    pub(super) identity: String,
    state: Mutex<State>,
    /// One read at a time.
    reading: tokio::sync::Mutex<()>,
    /// A background poll is running.
    polling: std::sync::atomic::AtomicBool,
}

impl VaultSource {
    pub fn new(config: &VaultCredential, http: &reqwest::Client, clock: &Arc<dyn Clock>) -> Self {
        let (credential, tenant_id, client_id, authority, identity) = match &config.access.identity
        {
            VaultIdentity::Managed {
                client_id,
                endpoint,
            } => (
                Credential::ManagedIdentity {
                    client_id: client_id.clone(),
                    endpoint: endpoint.clone(),
                },
                String::new(),
                client_id.clone().unwrap_or_default(),
                String::new(),
                match client_id {
                    Some(id) => format!("the managed identity {id}"),
                    None => "the system-assigned managed identity".to_string(),
                },
            ),
            VaultIdentity::Workload {
                token_file,
                tenant_id,
                client_id,
                authority,
            } => (
                Credential::WorkloadIdentity {
                    token_file: token_file.clone(),
                },
                tenant_id.clone(),
                client_id.clone(),
                authority.clone(),
                format!("the workload identity {client_id}"),
            ),
        };
        let auth = Auth {
            tenant_id,
            client_id,
            authority,
            scope: config.access.scope.clone(),
            credential,
        };
        VaultSource {
            config: config.clone(),
            http: http.clone(),
            clock: Arc::clone(clock),
            token: TokenSource::new(auth, http.clone(), Arc::clone(clock)),
            identity,
            state: Mutex::new(State::default()),
            reading: tokio::sync::Mutex::new(()),
            polling: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// What the credential is, for logs and reports.
    pub fn describe(&self) -> String {
        let v = &self.config.vault;
        let alg = material::alg_name(self.config.alg);
        match &self.config.object {
            VaultObject::Secret(n) => format!("client secret in Key Vault {v} (secret {n})"),
            VaultObject::Certificate(n) => {
                format!("certificate in Key Vault {v} (certificate {n}, {alg})")
            }
            VaultObject::CertificateKey(n) => format!(
                "certificate in Key Vault {v}, assertions signed by the vault (certificate {n}, {alg})"
            ),
        }
    }

    pub(super) fn object(&self) -> String {
        match &self.config.object {
            VaultObject::Secret(n) => format!("secret {n}"),
            VaultObject::Certificate(n) => format!("certificate {n}"),
            VaultObject::CertificateKey(n) => format!("certificate key {n}"),
        }
    }

    pub fn status(&self) -> VaultStatus {
        let state = self.lock();
        VaultStatus {
            vault: self.config.vault.clone(),
            object: self.object(),
            version: state.material.as_ref().map(|m| m.version().to_string()),
            error: state.error.as_ref().map(ToString::to_string),
        }
    }

    /// The material in hand, if any (no I/O).
    pub fn material(&self) -> Option<Arc<Material>> {
        self.lock().material.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some` when no read is due: the material, or the failure that blocks reads for now.
    fn in_hand(&self) -> Option<Result<Arc<Material>, VaultError>> {
        let now = self.clock.now();
        let state = self.lock();
        let due = state.next_read.is_none_or(|at| now >= at);
        match (&state.material, &state.error) {
            _ if due => None,
            (Some(m), _) => Some(Ok(Arc::clone(m))),
            (None, Some(e)) => Some(Err(e.clone())),
            (None, None) => None,
        }
    }

    /// The current material: in hand, or read now when due.
    pub async fn current(&self) -> Result<Arc<Material>, VaultError> {
        match self.in_hand() {
            Some(r) => r,
            None => self.refresh(false).await,
        }
    }

    /// Starts reading the object in its own task if a read is due and none is running (the
    /// token source's background loop calls this; a slow vault never holds that loop up).
    pub fn poll(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.in_hand().is_some() || self.polling.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _ = this.refresh(false).await;
            this.polling.store(false, Ordering::Release);
        });
    }

    pub(super) async fn refresh(&self, force: bool) -> Result<Arc<Material>, VaultError> {
        let _one = self.reading.lock().await;
        if !force && let Some(r) = self.in_hand() {
            return r;
        }
        let started = self.clock.now();
        let result = self.read().await;
        let mut state = self.lock();
        match result {
            Ok(m) => {
                let before = state.material.as_ref().map(|m| m.version().to_string());
                if before.as_deref() != Some(m.version()) {
                    tracing::info!(vault = %self.config.vault, object = %self.object(), version = %m.version(), previous = before.as_deref().unwrap_or("-"), "Key Vault credential: this version is used from the next token request on");
                    if let Some(w) = super::doctor::expiry_warning(&m, self.clock.wall()) {
                        tracing::warn!(vault = %self.config.vault, object = %self.object(), version = %m.version(), "{w}");
                    }
                }
                let jitter = f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65_536.0;
                state.next_read = Some(started + self.config.refresh.mul_f64(0.8 + 0.2 * jitter));
                state.error = None;
                let m = Arc::new(m);
                state.material = Some(Arc::clone(&m));
                Ok(m)
            }
            Err(e) => {
                let retry = match &e {
                    VaultError::Throttled { retry_after, .. } => Duration::from_secs(*retry_after),
                    _ => RETRY_AFTER_FAILURE.min(self.config.refresh),
                };
                state.next_read = Some(self.clock.now() + retry);
                state.error = Some(e.clone());
                match &state.material {
                    Some(m) => {
                        tracing::warn!(error = %e, version = %m.version(), retry_in_s = retry.as_secs(), "Key Vault read failed; the version in hand stays in use");
                        Ok(Arc::clone(m))
                    }
                    None => {
                        tracing::error!(error = %e, retry_in_s = retry.as_secs(), "Key Vault read failed and no version is in hand");
                        Err(e)
                    }
                }
            }
        }
    }

    /// Entra rejected the credential: re-read now (at most once per [`REREAD_INTERVAL`], never
    /// while throttled). The new material when its version differs.
    pub(super) async fn reread(&self) -> Option<Arc<Material>> {
        let now = self.clock.now();
        let before = {
            let mut state = self.lock();
            let recent = state.last_forced.is_some_and(|t| now < t + REREAD_INTERVAL);
            if recent || throttled(&state, now).is_some() {
                return None;
            }
            state.last_forced = Some(now);
            state.material.as_ref().map(|m| m.version().to_string())
        };
        let m = self.refresh(true).await.ok()?;
        (before.as_deref() != Some(m.version())).then_some(m)
    }

    /// Key Vault's throttling error while its `Retry-After` has not passed.
    pub(super) fn throttled_now(&self) -> Option<VaultError> {
        throttled(&self.lock(), self.clock.now())
    }

    pub(super) fn record(&self, e: &VaultError) {
        let mut state = self.lock();
        if let VaultError::Throttled { retry_after, .. } = e {
            state.next_read = Some(self.clock.now() + Duration::from_secs(*retry_after));
        }
        state.error = Some(e.clone());
    }

    pub(super) async fn vault_token(&self) -> Result<Secret, VaultError> {
        self.token.token().await.map_err(|e| VaultError::Token {
            identity: self.identity.clone(),
            why: e.to_string(),
        })
    }

    /// A refusal of the vault token itself (401) drops it, so the next call gets a new one.
    pub(super) fn check_token(&self, token: &Secret, e: &VaultError) {
        if matches!(e, VaultError::Denied { status: 401, .. }) {
            self.token.reject(token);
        }
    }

    pub(super) fn call(&self, op: Operation) -> Call<'_> {
        Call {
            vault: &self.config.vault,
            name: self.config.object.name(),
            op,
            identity: &self.identity,
        }
    }

    async fn read(&self) -> Result<Material, VaultError> {
        let token = self.vault_token().await?;
        let result = self.read_with(&token).await;
        if let Err(e) = &result {
            self.check_token(&token, e);
        }
        result
    }

    async fn read_with(&self, token: &Secret) -> Result<Material, VaultError> {
        match &self.config.object {
            VaultObject::Secret(_) => {
                let b =
                    client::get_secret(&self.http, &self.call(Operation::GetSecret), token).await?;
                Ok(Material::Secret {
                    value: b.value,
                    version: b.version,
                    expires: b.expires,
                })
            }
            VaultObject::Certificate(_) => {
                let call = self.call(Operation::GetSecret);
                let b = client::get_secret(&self.http, &call, token).await?;
                let cert = material::certificate_from_secret(&b.value, b.content_type.as_deref())
                    .map_err(|why| unusable(&call, why))?;
                Ok(Material::Certificate {
                    cert: Arc::new(cert),
                    version: b.version,
                })
            }
            VaultObject::CertificateKey(_) => {
                let call = self.call(Operation::GetCertificate);
                let b = client::get_certificate(&self.http, &call, token).await?;
                let cert =
                    PublicCertificate::from_der(&b.der).map_err(|why| unusable(&call, why))?;
                Ok(Material::Key {
                    cert,
                    version: b.version,
                    key_name: b.key_name,
                    key_version: b.key_version,
                })
            }
        }
    }
}

fn throttled(state: &State, now: Instant) -> Option<VaultError> {
    match &state.error {
        Some(e @ VaultError::Throttled { .. }) if state.next_read.is_some_and(|t| now < t) => {
            Some(e.clone())
        }
        _ => None,
    }
}

pub(super) fn unusable(call: &Call<'_>, why: String) -> VaultError {
    VaultError::Unusable {
        vault: call.vault.to_string(),
        what: match call.op {
            Operation::Sign => "key",
            Operation::GetCertificate => "certificate",
            Operation::GetSecret => "secret",
        },
        name: call.name.to_string(),
        why,
    }
}
