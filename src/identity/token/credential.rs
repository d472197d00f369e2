//! The configured credential, live: what a token request needs right now.
//!
//! Invariants: credential files are read at every token request (about hourly), so a rotated
//! `file:` secret, certificate, key or federated token is used by the next request; a
//! certificate is re-parsed only when its files' bytes changed, and a pair that does not parse
//! or whose key does not match its certificate (a rotation caught half-written) is ignored in
//! favour of the last good one — a rotation never makes a token request fail that would have
//! succeeded before it. Errors carry no secret, assertion or token.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::certificate::{self, Certificate, CertificateError};
use super::entra::{self, ClientAuth, EntraError, Issued};
use super::managed::{self, Flow};
use super::workload;
use crate::clock::Clock;
use crate::config::secret::SecretRef;
use crate::config::{AssertionAlg, Auth, CertificateFiles, Credential};
use crate::identity::vault::VaultSource;

/// A certificate this close to `notAfter` is warned about (start, doctor).
pub const CERTIFICATE_WARNING_SECS: i64 = 30 * 86_400;

pub struct CredentialSource {
    kind: Kind,
}

enum Kind {
    Secret(SecretRef),
    Certificate {
        files: CertificateFiles,
        loaded: Mutex<Option<Loaded>>,
    },
    Managed {
        flow: Flow,
        client_id: Option<String>,
    },
    Workload {
        token_file: PathBuf,
    },
    /// A secret, certificate or certificate key in Azure Key Vault.
    Vault(Arc<VaultSource>),
}

struct Loaded {
    fingerprint: Vec<u8>,
    cert: Arc<Certificate>,
}

impl CredentialSource {
    /// `env` looks up environment variables (the managed identity flow depends on them); a
    /// Key Vault credential reads the vault with `http` on `clock`.
    pub fn new(
        credential: &Credential,
        env: impl Fn(&str) -> Option<String>,
        http: &reqwest::Client,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        let kind = match credential {
            Credential::ClientSecret(r) => Kind::Secret(r.clone()),
            Credential::Certificate(files) => Kind::Certificate {
                files: files.clone(),
                loaded: Mutex::new(None),
            },
            Credential::ManagedIdentity {
                client_id,
                endpoint,
            } => Kind::Managed {
                flow: Flow::detect(endpoint.as_deref(), env),
                client_id: client_id.clone(),
            },
            Credential::WorkloadIdentity { token_file } => Kind::Workload {
                token_file: token_file.clone(),
            },
            Credential::KeyVault(v) => Kind::Vault(Arc::new(VaultSource::new(v, http, clock))),
        };
        CredentialSource { kind }
    }

    /// What kind of credential this is, for logs and reports.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Secret(r) => format!("client secret ({r:?})"),
            Kind::Certificate { files, .. } => match files.alg {
                AssertionAlg::Ps256 => "certificate (PS256, x5t#S256)".into(),
                AssertionAlg::Rs256 => "certificate (RS256, x5t)".into(),
            },
            Kind::Managed { flow, .. } => format!("managed identity ({flow:?})"),
            Kind::Workload { token_file } => {
                format!("workload identity ({})", token_file.display())
            }
            Kind::Vault(v) => v.describe(),
        }
    }

    /// Obtains a token with the credential as it is now.
    pub async fn acquire(
        &self,
        http: &reqwest::Client,
        auth: &Auth,
        now: SystemTime,
    ) -> Result<Issued, EntraError> {
        match &self.kind {
            Kind::Secret(r) => {
                let secret = r
                    .resolve()
                    .map_err(|e| EntraError::Credential(e.to_string()))?;
                entra::request_token(http, auth, ClientAuth::Secret(&secret)).await
            }
            Kind::Certificate { files, .. } => {
                let cert = self
                    .certificate()
                    .unwrap_or(Err(CertificateError::NoCertificate))
                    .map_err(|e| EntraError::Credential(e.to_string()))?;
                let assertion = cert
                    .assertion(files.alg, &auth.client_id, &auth.token_endpoint(), now)
                    .map_err(|e| EntraError::Credential(e.to_string()))?;
                entra::request_token(http, auth, ClientAuth::Assertion(&assertion)).await
            }
            Kind::Managed { flow, client_id } => {
                let resource = managed::resource_of(&auth.scope);
                managed::request(http, flow, client_id.as_deref(), resource, now).await
            }
            Kind::Workload { token_file } => {
                let assertion = workload::read_token(token_file)?;
                entra::request_token(http, auth, ClientAuth::Assertion(&assertion)).await
            }
            Kind::Vault(v) => v.acquire(auth, now).await,
        }
    }

    /// The certificate as the files hold it now (or the last good one during a rotation);
    /// `None` for other credential kinds.
    pub fn certificate(&self) -> Option<Result<Arc<Certificate>, CertificateError>> {
        let Kind::Certificate { files, loaded } = &self.kind else {
            return None;
        };
        let mut loaded = loaded.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = certificate::read_files(&files.source).and_then(|bytes| {
            let fingerprint = bytes.fingerprint();
            match loaded.as_ref() {
                Some(l) if l.fingerprint == fingerprint => Ok(None),
                _ => Ok(Some((fingerprint, bytes.parse(&files.source)?))),
            }
        });
        Some(match (fresh, loaded.as_mut()) {
            (Ok(None), Some(l)) => Ok(Arc::clone(&l.cert)),
            (Ok(Some((fingerprint, cert))), previous) => {
                if previous.is_some() {
                    tracing::info!(x5t_s256 = %cert.x5t_s256, subject = %cert.subject, "certificate credential rotated; the next token request uses it");
                }
                let cert = Arc::new(cert);
                *loaded = Some(Loaded {
                    fingerprint,
                    cert: Arc::clone(&cert),
                });
                Ok(cert)
            }
            (Err(e), Some(l)) => {
                tracing::warn!(error = %e, "certificate files unusable (rotation in progress?); keeping the previous certificate");
                Ok(Arc::clone(&l.cert))
            }
            (Err(e), None) => Err(e),
            (Ok(None), None) => Err(CertificateError::NoCertificate),
        })
    }

    /// The Key Vault credential, when this is one.
    pub fn vault(&self) -> Option<&Arc<VaultSource>> {
        match &self.kind {
            Kind::Vault(v) => Some(v),
            _ => None,
        }
    }

    /// Seconds until the certificate's `notAfter`, for certificate credentials that load.
    pub fn certificate_seconds_left(&self, now: SystemTime) -> Option<i64> {
        if let Kind::Vault(v) = &self.kind {
            return v.material()?.certificate_seconds_left(now);
        }
        match self.certificate()? {
            Ok(cert) => Some(cert.seconds_left(now)),
            Err(_) => None,
        }
    }
}

/// One line about a certificate's expiry when it needs attention: expired, or under 30 days.
pub fn expiry_warning(cert: &Certificate, now: SystemTime) -> Option<String> {
    let left = cert.seconds_left(now);
    if left <= 0 {
        Some(format!(
            "the certificate {} has expired: Entra ID will refuse it",
            cert.subject
        ))
    } else if left < CERTIFICATE_WARNING_SECS {
        Some(format!(
            "the certificate {} expires in {} day(s): rotate it (upload the new one to the app registration first)",
            cert.subject,
            left / 86_400
        ))
    } else {
        None
    }
}
