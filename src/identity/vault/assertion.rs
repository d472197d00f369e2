//! Token requests with a vault-backed credential: the client secret or a certificate assertion
//! signed locally, or an assertion whose digest Key Vault signs with the certificate's key,
//! verified against the certificate before it is sent.
//!
//! Invariants: an Entra ID rejection of the credential (see [`REJECTS_CREDENTIAL`]) re-reads the
//! vault object at once (at most once a minute) and retries once when the version changed; a
//! signature the certificate does not verify never reaches Entra ID.

use std::time::SystemTime;

use super::client::{self, Call, Operation, VaultError};
use super::material::{self, PublicCertificate};
use super::source::{Material, REJECTS_CREDENTIAL, VaultSource, unusable};
use crate::config::Auth;
use crate::config::secret::Secret;
use crate::identity::token::entra::{self, ClientAuth, EntraError, Issued};

impl VaultSource {
    /// Obtains a token with the current version; retries once with a re-read version when
    /// Entra ID rejects the credential.
    pub async fn acquire(&self, auth: &Auth, now: SystemTime) -> Result<Issued, EntraError> {
        let m = self.current().await.map_err(credential_error)?;
        let first = self.request(&m, auth, now).await;
        match &first {
            Err(EntraError::Rejected {
                code: Some(code), ..
            }) if REJECTS_CREDENTIAL.contains(code) => {
                tracing::warn!(vault = %self.config.vault, object = %self.object(), version = %m.version(), code, "Entra ID rejected the credential from Key Vault; re-reading its current version");
                match self.reread().await {
                    Some(newer) => self.request(&newer, auth, now).await,
                    None => first,
                }
            }
            _ => first,
        }
    }

    async fn request(
        &self,
        m: &Material,
        auth: &Auth,
        now: SystemTime,
    ) -> Result<Issued, EntraError> {
        tracing::debug!(vault = %self.config.vault, object = %self.object(), version = %m.version(), "token request with the Key Vault credential");
        match m {
            Material::Secret { value, .. } => {
                entra::request_token(&self.http, auth, ClientAuth::Secret(value)).await
            }
            Material::Certificate { cert, .. } => {
                let assertion = cert
                    .assertion(
                        self.config.alg,
                        &auth.client_id,
                        &auth.token_endpoint(),
                        now,
                    )
                    .map_err(|e| EntraError::Credential(e.to_string()))?;
                entra::request_token(&self.http, auth, ClientAuth::Assertion(&assertion)).await
            }
            Material::Key {
                cert,
                key_name,
                key_version,
                ..
            } => {
                let assertion = self
                    .signed_assertion(cert, key_name, key_version, auth, now)
                    .await
                    .map_err(credential_error)?;
                entra::request_token(&self.http, auth, ClientAuth::Assertion(&assertion)).await
            }
        }
    }

    /// An assertion signed by Key Vault's key and verified against the certificate.
    pub async fn signed_assertion(
        &self,
        cert: &PublicCertificate,
        key_name: &str,
        key_version: &str,
        auth: &Auth,
        now: SystemTime,
    ) -> Result<Secret, VaultError> {
        let alg = self.config.alg;
        let input =
            material::signing_input(cert, alg, &auth.client_id, &auth.token_endpoint(), now);
        let call = Call {
            name: key_name,
            ..self.call(Operation::Sign)
        };
        // Key Vault asked to wait: no signature before its Retry-After.
        if let Some(e) = self.throttled_now() {
            return Err(e);
        }
        let token = self.vault_token().await?;
        let digest = material::digest_of(&input);
        let signed = client::sign(
            &self.http,
            &call,
            key_version,
            material::alg_name(alg),
            &digest,
            &token,
        )
        .await;
        let signature = signed.inspect_err(|e| {
            self.check_token(&token, e);
            self.record(e);
        })?;
        material::assertion(cert, alg, &input, &signature).ok_or_else(|| {
            let e = unusable(
                &call,
                format!(
                    "the {} signature of key version {key_version} does not verify against the certificate {} (x5t#S256 {}): the key does not belong to the certificate; Entra ID was not asked",
                    material::alg_name(alg),
                    cert.subject,
                    cert.x5t_s256
                ),
            );
            self.record(&e);
            e
        })
    }
}

fn credential_error(e: VaultError) -> EntraError {
    EntraError::Credential(e.to_string())
}
