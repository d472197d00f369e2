//! Certificates made at test time with rcgen (no private key is committed): a test CA with a
//! server certificate for `localhost` and a client certificate signed by it, for the
//! listener's TLS and mutual TLS; and self-signed RSA app certificates, for the certificate
//! credential against the simulated Entra ID.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, RsaKeySize,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::install_crypto_provider;
use super::proc::write;

/// A test CA, a server certificate for `localhost` and `127.0.0.1`, and a client certificate
/// (`sales-agent`), all made fresh for each test.
pub struct Pki {
    pub ca_pem: String,
    pub server_cert: String,
    pub server_key: String,
    /// The client's certificate and key, concatenated (what reqwest's Identity reads).
    pub client_identity: String,
}

impl Pki {
    pub fn generate() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Distinct names: OpenSSL takes a leaf whose subject equals its issuer for self-signed.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "dataverse-gateway test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = params.signed_by(&server_key, &ca).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["sales-agent".into()]).unwrap();
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            server_cert: server.pem(),
            server_key: server_key.serialize_pem(),
            client_identity: format!("{}{}", client.pem(), client_key.serialize_pem()),
        }
    }

    /// Writes the server's files and the CA under `dir`; returns the gateway's `tls:` YAML
    /// section (requiring client certificates from this CA when `mutual`) and the CA file.
    pub fn tls_yaml(&self, dir: &Path, mutual: bool) -> (String, PathBuf) {
        let cert = write(dir, "server.crt", &self.server_cert);
        let key = write(dir, "server.key", &self.server_key);
        let ca = write(dir, "ca.pem", &self.ca_pem);
        let client_ca = if mutual {
            format!("  client_ca_file: {ca:?}\n")
        } else {
            String::new()
        };
        let yaml = format!("tls:\n  cert_file: {cert:?}\n  key_file: {key:?}\n{client_ca}");
        (yaml, PathBuf::from(ca))
    }

    /// A client that trusts only this CA and resolves `localhost` to loopback; it presents the
    /// client certificate when `identity`.
    pub fn client(&self, identity: bool) -> reqwest::Client {
        install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap();
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .resolve("localhost", "127.0.0.1:0".parse().unwrap());
        if identity {
            let pem = self.client_identity.as_bytes();
            b = b.identity(reqwest::Identity::from_pem(pem).unwrap());
        }
        b.build().unwrap()
    }
}

/// A fresh self-signed RSA certificate: PEM certificate, PKCS#8 PEM key, DER certificate.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// A self-signed RSA app certificate valid from yesterday for `valid_days`.
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
