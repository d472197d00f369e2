//! The Key Vault parts of the configuration: the top-level `key_vault:` section (how the gateway
//! signs in to Key Vault) and the three vault-backed credential forms under `auth`.
//!
//! Pure data. Every [`VaultCredential`] carries the [`VaultAccess`] it signs in with (copied from
//! `key_vault:` when the file is read), so a token source's identity includes it: a reload that
//! changes `key_vault:` builds new token sources.

use std::path::PathBuf;
use std::time::Duration;

use super::AssertionAlg;

/// Key Vault's token scope in the public cloud (sovereign clouds set `key_vault.scope`).
pub const DEFAULT_VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// How often the vault is polled for a new version when `refresh` is not given.
pub const DEFAULT_VAULT_REFRESH: Duration = Duration::from_secs(300);

/// A credential that lives in Azure Key Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultCredential {
    /// `https://NAME.vault.azure.net` (an origin, no trailing slash; http only on loopback).
    pub vault: String,
    pub object: VaultObject,
    /// The assertion's algorithm for the certificate forms (PS256 by default).
    pub alg: AssertionAlg,
    /// How often the current version is re-read.
    pub refresh: Duration,
    /// How the gateway signs in to the vault.
    pub access: VaultAccess,
}

/// What the credential is in the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultObject {
    /// `client_secret: { key_vault: { secret } }`: the secret's current version is the client secret.
    Secret(String),
    /// `certificate: { key_vault: { certificate } }`: the certificate with its private key, read
    /// through the secret Key Vault keeps for it.
    Certificate(String),
    /// `certificate: { key_vault_key: { certificate } }`: the public certificate, and every
    /// assertion signed by Key Vault with the certificate's key (never read).
    CertificateKey(String),
}

impl VaultObject {
    pub fn name(&self) -> &str {
        match self {
            VaultObject::Secret(n)
            | VaultObject::Certificate(n)
            | VaultObject::CertificateKey(n) => n,
        }
    }
}

/// `key_vault:` — the gateway's own identity towards Key Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultAccess {
    pub identity: VaultIdentity,
    /// The token scope (default [`DEFAULT_VAULT_SCOPE`]).
    pub scope: String,
}

impl Default for VaultAccess {
    fn default() -> Self {
        VaultAccess {
            identity: VaultIdentity::Managed {
                client_id: None,
                endpoint: None,
            },
            scope: DEFAULT_VAULT_SCOPE.into(),
        }
    }
}

/// `key_vault.identity`: a managed identity (default) or a workload identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultIdentity {
    Managed {
        client_id: Option<String>,
        endpoint: Option<String>,
    },
    /// Entra ID app of the workload identity; empty fields fall back to `AZURE_*` variables.
    Workload {
        token_file: PathBuf,
        tenant_id: String,
        client_id: String,
        authority: String,
    },
}
