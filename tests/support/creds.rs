//! Test credentials made at test time (never committed): RSA certificates from rcgen, PEM and
//! PKCS#12 files, and gateway configs that use each credential kind against a simulator.
#![allow(dead_code)]

use std::path::Path;

use dataverse_gateway::sim::{SimConfig, Simulator};
use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256, RsaKeySize};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A fresh self-signed RSA certificate: PEM certificate, PKCS#8 PEM key, DER certificate.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

pub fn test_cert(valid_days: i64) -> TestCert {
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
    let mut params = CertificateParams::new(vec!["dataverse-gateway-test".into()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(valid_days);
    let cert = params.self_signed(&key).unwrap();
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

impl TestCert {
    /// A modern (AES-256, PBES2) PKCS#12 file of this certificate and key.
    pub fn pkcs12(&self, password: &str) -> Vec<u8> {
        use p12_keystore::{
            EncryptionAlgorithm, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain,
        };
        let PrivateKeyDer::Pkcs8(key) =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap()
        else {
            panic!("rcgen writes PKCS#8")
        };
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        let chain = PrivateKeyChain::new(
            vec![7u8; 20],
            PrivateKey::from_der(key.secret_pkcs8_der()).unwrap(),
            [p12_keystore::Certificate::from_der(&cert).unwrap()],
        );
        let mut store = KeyStore::new();
        store.add_entry("gateway", KeyStoreEntry::PrivateKeyChain(chain));
        store
            .writer(password)
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .write()
            .unwrap()
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (replacing them: a rotation).
    pub fn write_pem(&self, dir: &Path) -> (String, String) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&key, &self.key_pem).unwrap();
        std::fs::write(&cert, &self.cert_pem).unwrap();
        (cert.display().to_string(), key.display().to_string())
    }
}

/// One default tenant `contoso` against `sim` whose auth block has `credential` (indented 6).
pub fn tenant_with(sim: &Simulator, credential: &str) -> String {
    let app = &SimConfig::default().apps[0];
    format!(
        "tenants:\n  contoso:\n    default: true\n    dataverse:\n      url: {url}\n      metadata_file: {csdl}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n{credential}\n    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n",
        url = sim.base_url(),
        csdl = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/metadata.xml"),
        tid = app.tenant_id,
        cid = app.client_id,
    )
}

/// A gateway on a loopback port with its own clock (the simulator may have another); stops
/// when the returned sender is dropped.
pub async fn start_gateway(
    yaml: &str,
    clock: std::sync::Arc<dyn dataverse_gateway::clock::Clock>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    dataverse_gateway::identity::tls::install_crypto_provider();
    let (config, _) = dataverse_gateway::config::parse_str(yaml, "test.yaml")
        .unwrap_or_else(|d| panic!("{d}\n{yaml}"));
    let gateway =
        dataverse_gateway::proxy::gateway::Gateway::new(config, clock).expect("gateway builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(dataverse_gateway::proxy::server::serve(
        listener,
        gateway,
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(5),
    ));
    (url, stop)
}
