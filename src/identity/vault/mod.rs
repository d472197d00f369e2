//! Credentials that live in Azure Key Vault (see docs/configuration.md#credentials): a client
//! secret, a certificate with its key (read through the certificate's secret), or a certificate
//! whose key never leaves the vault and signs every client assertion with Key Vault's `sign`.
//!
//! [`client`] speaks Key Vault's REST API (no Azure SDK: the gateway's own HTTP client and TLS);
//! [`material`] turns what was read into a certificate or an assertion (pure); [`source`] keeps
//! the current version and re-reads it on a schedule and when Entra ID rejects it;
//! [`assertion`] obtains tokens with it; [`doctor`] reports on it. The gateway signs in to Key Vault with its own managed or workload identity
//! (`key_vault.identity`), through the same token code as tenants use.
//!
//! Guarantees: no secret value, private key or token appears in a log, an error or a metric;
//! only versions and ids do. The `key_vault_key` form never requests the private key.

pub mod assertion;
pub mod client;
pub mod doctor;
pub mod material;
pub mod source;

pub use client::VaultError;
pub use doctor::Check;
pub use source::{VaultSource, VaultStatus};
