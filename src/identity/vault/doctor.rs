//! What `doctor` and the start-up warning learn from the vault: the steps (vault token, object
//! with version and expiry, a test signature for `key_vault_key`) and the certificate's expiry.
//!
//! Never a value: versions, names, subjects and days only.

use std::time::SystemTime;

use super::material;
use super::source::{Material, VaultSource};
use crate::config::Auth;

/// One `doctor` step about the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub name: &'static str,
    pub detail: String,
}

impl VaultSource {
    /// `doctor`'s steps: the vault token, the object (version and expiry), and for
    /// `key_vault_key` a test signature verified against the certificate. Stops at the first
    /// failure.
    pub async fn check(&self, auth: &Auth) -> Vec<Check> {
        let mut steps = Vec::new();
        let mut step = |ok, name, detail: String| {
            steps.push(Check { ok, name, detail });
            ok
        };
        let scope = &self.config.access.scope;
        let token = self.vault_token().await;
        let detail = match &token {
            Ok(_) => format!("obtained for {} (scope {scope})", self.identity),
            Err(e) => e.to_string(),
        };
        if !step(token.is_ok(), "vault token", detail) {
            return steps;
        }
        let m = match self.refresh(true).await {
            Ok(m) if self.status().error.is_none() => m,
            Ok(_) | Err(_) => {
                let e = self.status().error.unwrap_or_default();
                step(false, "vault object", e);
                return steps;
            }
        };
        let now = self.clock.wall();
        let expiry = match &*m {
            Material::Secret { expires: None, .. } => "no expiry set".to_string(),
            Material::Secret {
                expires: Some(exp), ..
            } => {
                let days = (exp - unix_secs(now)) / 86_400;
                format!("expires in {days} day(s)")
            }
            other => {
                let days = other.certificate_seconds_left(now).unwrap_or(0) / 86_400;
                let subject = other.subject().unwrap_or("?");
                format!("certificate {subject}, valid for {days} more day(s)")
            }
        };
        let detail = format!("{} found, version {}, {expiry}", self.object(), m.version());
        step(true, "vault object", detail);
        if let Material::Key {
            cert,
            key_name,
            key_version,
            ..
        } = &*m
        {
            let signed = self
                .signed_assertion(cert, key_name, key_version, auth, now)
                .await;
            let detail = match &signed {
                Ok(_) => format!(
                    "{} test signature by key {key_name} version {key_version} verifies against the certificate",
                    material::alg_name(self.config.alg)
                ),
                Err(e) => e.to_string(),
            };
            step(signed.is_ok(), "vault signature", detail);
        }
        steps
    }

    /// The certificate's expiry warning (expired, or under 30 days).
    pub fn certificate_warning(&self, now: SystemTime) -> Option<String> {
        expiry_warning(&*self.material()?, now)
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One line about a certificate's expiry when it needs attention: expired, or under 30 days.
pub fn expiry_warning(m: &Material, now: SystemTime) -> Option<String> {
    let left = m.certificate_seconds_left(now)?;
    let subject = m.subject().unwrap_or("?");
    if left <= 0 {
        Some(format!(
            "the certificate {subject} in Key Vault has expired: Entra ID will refuse it"
        ))
    } else if left < crate::identity::token::credential::CERTIFICATE_WARNING_SECS {
        Some(format!(
            "the certificate {subject} in Key Vault expires in {} day(s): renew it there (and register the new one on the app)",
            left / 86_400
        ))
    } else {
        None
    }
}
