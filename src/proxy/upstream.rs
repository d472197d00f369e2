//! Connections to Dataverse and Entra ID: one rustls configuration (aws-lc-rs), one connector
//! (ALPN h2/http1.1), the per-org connection pools every request to Dataverse uses
//! ([`OrgClient`], one per org URL, kept across reloads: agents' requests, `$metadata`,
//! `doctor`), and one reqwest client for token requests.
//!
//! Trust: the webpki roots, the system store, and `upstream_tls.extra_ca_file` if configured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{Timeouts, UpstreamTls};
use crate::proxy::org::OrgClient;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot read upstream_tls.extra_ca_file {path}: {reason}")]
    ExtraCa { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("dataverse.url: {0}")]
    Org(String),
}

#[derive(Clone)]
pub struct Upstream {
    pub entra: reqwest::Client,
    connector: HttpsConnector<HttpConnector>,
    idle: Duration,
    orgs: Arc<Mutex<HashMap<String, Arc<OrgClient>>>>,
}

/// The connector to orgs: `https` with ALPN h2 and http/1.1 (or plain `http`), TCP_NODELAY,
/// keep-alive probes, and the connect timeout.
pub fn org_connector(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http)
}

impl Upstream {
    pub fn new(tls: &UpstreamTls, timeouts: &Timeouts) -> Result<Upstream, UpstreamError> {
        crate::identity::tls::install_crypto_provider();
        let roots = root_store(tls)?;
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = org_connector(config.clone(), timeouts.connect);
        let mut entra_tls = config;
        entra_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let entra = reqwest::Client::builder()
            .tls_backend_preconfigured(entra_tls)
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.token_request)
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        Ok(Upstream {
            entra,
            connector,
            idle: timeouts.idle,
            orgs: Arc::default(),
        })
    }

    /// The connections to the org at `url`, shared by every tenant (and every snapshot) that
    /// uses it.
    pub fn org(&self, url: &str) -> Result<Arc<OrgClient>, UpstreamError> {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(org) = orgs.get(url) {
            return Ok(Arc::clone(org));
        }
        let org =
            OrgClient::new(url, self.connector.clone(), self.idle).map_err(UpstreamError::Org)?;
        let org = Arc::new(org);
        org.start_reaper();
        orgs.insert(url.to_string(), Arc::clone(&org));
        Ok(org)
    }

    /// Forgets the orgs no tenant of the new configuration uses (their idle connections close).
    pub fn retain_orgs(&self, used: &[&str]) {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        orgs.retain(|url, _| used.contains(&url.as_str()));
    }
}

fn root_store(tls: &UpstreamTls) -> Result<Arc<RootCertStore>, UpstreamError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &tls.extra_ca_file {
        let err = |reason: String| UpstreamError::ExtraCa {
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificates in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(Arc::new(roots))
}
