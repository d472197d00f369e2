//! What a vault object becomes once read: a certificate with its key from a certificate's secret
//! (PKCS#12 or PEM, by its content type), a public certificate, and the client assertion signed
//! by Key Vault's key.
//!
//! Pure: bytes and times in, values out. Invariants: an assertion signed remotely is returned
//! only when its signature verifies against the certificate it names (a key that does not belong
//! to the certificate is caught here, before Entra ID is asked); key material never prints.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::config::AssertionAlg;
use crate::config::secret::Secret;
use crate::identity::token::certificate::{ASSERTION_LIFETIME, Certificate, CertificateError};

/// Content type of a certificate's secret exported as PKCS#12 (base64, no password).
pub const PKCS12: &str = "application/x-pkcs12";
/// Content type of a certificate's secret exported as PEM (key and certificate).
pub const PEM: &str = "application/x-pem-file";

/// The certificate and private key a certificate's secret holds.
pub fn certificate_from_secret(
    value: &Secret,
    content_type: Option<&str>,
) -> Result<Certificate, String> {
    let text = value.expose();
    let pem = match content_type {
        Some(PEM) => true,
        Some(PKCS12) => false,
        // Without a content type, the value says which it is.
        None => text.trim_start().starts_with("-----BEGIN"),
        Some(other) => {
            return Err(format!(
                "the certificate's secret has content type `{other}`, not {PKCS12} or {PEM}"
            ));
        }
    };
    let parsed = if pem {
        from_pem_bundle(text)
    } else {
        let der = STANDARD
            .decode(text.trim())
            .map_err(|_| "the certificate's secret is not base64 PKCS#12".to_string())?;
        Certificate::from_pkcs12(&der, "")
    };
    parsed.map_err(|e| match e {
        CertificateError::NoKey | CertificateError::Pkcs12Empty => {
            "the certificate's secret holds no private key (is the key non-exportable? use key_vault_key)".into()
        }
        other => format!("the certificate's secret cannot be used: {other}"),
    })
}

/// The key of a PEM bundle with the certificate that belongs to it, wherever it stands among
/// the bundle's certificates (a chain may come first).
fn from_pem_bundle(text: &str) -> Result<Certificate, CertificateError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut last = CertificateError::NoCertificate;
    for der in CertificateDer::pem_slice_iter(text.as_bytes()).filter_map(Result::ok) {
        let one = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(der.as_ref())
        );
        match Certificate::from_pem(one.as_bytes(), text.as_bytes()) {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A certificate without its private key (which stays in the vault).
#[derive(Clone, Debug)]
pub struct PublicCertificate {
    pub x5t: String,
    pub x5t_s256: String,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    pub subject: String,
    /// The RSA public key (PKCS#1 `RSAPublicKey`).
    public_key: Vec<u8>,
}

impl PublicCertificate {
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|_| "the certificate cannot be parsed".to_string())?;
        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = digest::digest(&digest::SHA256, der);
        Ok(PublicCertificate {
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            not_after: parsed.validity().not_after.timestamp(),
            subject: parsed.subject().to_string(),
            public_key: parsed.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Seconds until `notAfter` (negative once expired).
    pub fn seconds_left(&self, now: SystemTime) -> i64 {
        self.not_after - unix(now) as i64
    }

    /// Whether `signature` over `message` verifies with this certificate's key.
    pub fn verifies(&self, alg: AssertionAlg, message: &[u8], signature: &[u8]) -> bool {
        let params: &'static dyn signature::VerificationAlgorithm = match alg {
            AssertionAlg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            AssertionAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(params, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The JOSE name of the algorithm (also Key Vault's `alg`).
pub fn alg_name(alg: AssertionAlg) -> &'static str {
    match alg {
        AssertionAlg::Ps256 => "PS256",
        AssertionAlg::Rs256 => "RS256",
    }
}

/// The assertion's signing input `base64url(header).base64url(claims)`: the same header and
/// claims as a certificate on disk gives (`x5t#S256` with PS256, `x5t` with RS256).
pub fn signing_input(
    cert: &PublicCertificate,
    alg: AssertionAlg,
    client_id: &str,
    audience: &str,
    now: SystemTime,
) -> String {
    let header = match alg {
        AssertionAlg::Ps256 => {
            serde_json::json!({ "typ": "JWT", "alg": "PS256", "x5t#S256": cert.x5t_s256 })
        }
        AssertionAlg::Rs256 => serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5t": cert.x5t }),
    };
    let now = unix(now);
    let claims = serde_json::json!({
        "aud": audience, "iss": client_id, "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME.as_secs(),
    });
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// SHA-256 of the signing input: what Key Vault's `sign` takes for PS256 and RS256.
pub fn digest_of(input: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, input.as_bytes())
        .as_ref()
        .to_vec()
}

/// The finished assertion, when `signature` verifies against `cert`; `None` otherwise.
pub fn assertion(
    cert: &PublicCertificate,
    alg: AssertionAlg,
    input: &str,
    signature: &[u8],
) -> Option<Secret> {
    cert.verifies(alg, input.as_bytes(), signature)
        .then(|| Secret::new(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[path = "material_tests.rs"]
mod tests;
