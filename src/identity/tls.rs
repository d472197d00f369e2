//! TLS and mutual TLS on the agents' listener (`tls:` in the config), with rustls (aws-lc-rs).
//!
//! [`server_config`] reads the PEM files and builds a rustls server configuration: ALPN `h2`
//! and `http/1.1`; with `client_ca_file`, a client certificate signed by that CA is REQUIRED
//! (the handshake fails without one). The configuration lives in a [`SharedTls`] so that a
//! reload can swap in re-read certificates (rotation) for new connections.
//!
//! Errors name the file and the problem, never key material.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ListenerTls;

/// The listener's current TLS configuration, swappable on reload.
pub type SharedTls = Arc<ArcSwap<rustls::ServerConfig>>;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("invalid TLS settings: {0}")]
    Invalid(String),
}

/// Builds the listener's rustls configuration from `tls`.
/// Installs aws-lc-rs as the process-wide rustls provider (idempotent). Every rustls
/// configuration the gateway builds (agents' listener, connections to Dataverse and Entra ID)
/// calls this first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn server_config(tls: &ListenerTls) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    install_crypto_provider();
    let chain = certificates(&tls.cert_file, "tls.cert_file")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| TlsError::Read {
        what: "tls.key_file",
        path: tls.key_file.display().to_string(),
        reason: pem_reason(&e),
    })?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "tls.client_ca_file")? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Invalid(format!("tls.client_ca_file: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| TlsError::Invalid(format!("tls.client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid(format!("tls.cert_file/tls.key_file: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |e: rustls_pki_types::pem::Error| TlsError::Read {
        what,
        path: path.display().to_string(),
        reason: pem_reason(&e),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// The PEM error without any file contents.
fn pem_reason(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind found".into(),
        _ => "not valid PEM".into(),
    }
}
