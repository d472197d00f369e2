//! Unit tests of what vault objects become: a certificate from its secret in either content
//! type, and an assertion that is returned only when its signature verifies.

use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RsaKeyPair;
use rcgen::{CertificateParams, PKCS_RSA_SHA256, RsaKeySize};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

struct Generated {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn generate() -> Generated {
    let key = rcgen::KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
    let params = CertificateParams::new(vec!["vault-test".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Generated {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn pkcs8(g: &Generated) -> Vec<u8> {
    match PrivateKeyDer::from_pem_slice(g.key_pem.as_bytes()).unwrap() {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => panic!("rcgen writes PKCS#8"),
    }
}

fn pfx_base64(g: &Generated) -> String {
    use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let chain = PrivateKeyChain::new(
        vec![1u8; 20],
        PrivateKey::from_der(&pkcs8(g)).unwrap(),
        [p12_keystore::Certificate::from_der(&g.der).unwrap()],
    );
    let mut store = KeyStore::new();
    store.add_entry("c", KeyStoreEntry::PrivateKeyChain(chain));
    STANDARD.encode(store.writer("").write().unwrap())
}

#[test]
fn a_certificate_secret_reads_as_pkcs12_or_pem_by_content_type() {
    let g = generate();
    let pem = Secret::new(format!("{}{}", g.key_pem, g.cert_pem));
    let from_pem = certificate_from_secret(&pem, Some(PEM)).unwrap();
    let from_guess = certificate_from_secret(&pem, None).unwrap();
    let pfx = Secret::new(pfx_base64(&g));
    let from_pfx = certificate_from_secret(&pfx, Some(PKCS12)).unwrap();
    assert_eq!(from_pem.x5t_s256, from_pfx.x5t_s256);
    assert_eq!(from_guess.x5t_s256, from_pfx.x5t_s256);
    assert_eq!(
        from_pfx.x5t_s256,
        PublicCertificate::from_der(&g.der).unwrap().x5t_s256
    );
    // A chain certificate before the leaf: the one the key belongs to is found.
    let other = generate();
    let chained = Secret::new(format!("{}{}{}", g.key_pem, other.cert_pem, g.cert_pem));
    let from_chain = certificate_from_secret(&chained, Some(PEM)).unwrap();
    assert_eq!(from_chain.x5t_s256, from_pfx.x5t_s256);
    let e = certificate_from_secret(&pfx, Some("text/plain")).unwrap_err();
    assert!(e.contains("text/plain"), "{e}");
    let public_only = Secret::new(g.cert_pem.clone());
    let e = certificate_from_secret(&public_only, Some(PEM)).unwrap_err();
    assert!(e.contains("no private key"), "{e}");
    assert!(!e.contains("BEGIN"), "{e}");
}

fn sign_locally(g: &Generated, alg: AssertionAlg, message: &[u8]) -> Vec<u8> {
    let pair = RsaKeyPair::from_pkcs8(&pkcs8(g)).unwrap();
    let mut sig = vec![0; pair.public_modulus_len()];
    let padding: &'static dyn signature::RsaEncoding = match alg {
        AssertionAlg::Ps256 => &signature::RSA_PSS_SHA256,
        AssertionAlg::Rs256 => &signature::RSA_PKCS1_SHA256,
    };
    pair.sign(padding, &SystemRandom::new(), message, &mut sig)
        .unwrap();
    sig
}

#[test]
fn an_assertion_exists_only_with_a_signature_the_certificate_verifies() {
    let g = generate();
    let other = generate();
    let cert = PublicCertificate::from_der(&g.der).unwrap();
    for alg in [AssertionAlg::Ps256, AssertionAlg::Rs256] {
        let input = signing_input(
            &cert,
            alg,
            "client",
            "https://login/t/oauth2/v2.0/token",
            SystemTime::now(),
        );
        assert_eq!(digest_of(&input).len(), 32);
        let good = sign_locally(&g, alg, input.as_bytes());
        let jwt = assertion(&cert, alg, &input, &good).expect("verifies");
        let header = jsonwebtoken::decode_header(jwt.expose()).unwrap();
        assert_eq!(alg_name(alg), format!("{:?}", header.alg));
        match alg {
            AssertionAlg::Ps256 => {
                assert_eq!(header.x5t_s256.as_deref(), Some(cert.x5t_s256.as_str()))
            }
            AssertionAlg::Rs256 => assert_eq!(header.x5t.as_deref(), Some(cert.x5t.as_str())),
        }
        let wrong_key = sign_locally(&other, alg, input.as_bytes());
        assert!(assertion(&cert, alg, &input, &wrong_key).is_none());
    }
}
