//! Certificate credentials: loading the certificate and its RSA key (PEM with PKCS#8 or PKCS#1
//! keys, one combined PEM, or PKCS#12 including modern AES-encrypted files) and building the
//! client assertion Entra ID expects: a JWT signed with the certificate's key (PS256 or RS256),
//! naming the certificate by its thumbprints `x5t` / `x5t#S256` (see docs/configuration.md).
//!
//! Pure: parsing and [`Certificate::assertion`] take bytes and a time and return values; the
//! only I/O is [`read_files`]. Invariants: a [`Certificate`] exists only when its key belongs to
//! its certificate (so a half-rotated pair is refused, never used); key material never prints —
//! `Debug` shows the thumbprint and expiry only; the assertion is a [`Secret`].

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::secret::Secret;
use crate::config::{AssertionAlg, CertificateSource};

/// Lifetime of a client assertion (Microsoft: 5-10 minutes).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("no PEM private key found")]
    NoKey,
    #[error("the PKCS#12 file cannot be opened (wrong password or damaged file)")]
    Pkcs12,
    #[error("the PKCS#12 file holds no private key with its certificate")]
    Pkcs12Empty,
    #[error("the private key is not an RSA key (Entra ID certificate credentials use RSA)")]
    NotRsa,
    #[error("the certificate cannot be parsed")]
    BadCertificate,
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the client assertion cannot be signed")]
    Sign,
}

/// A certificate and the RSA key that belongs to it.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    /// PKCS#1 `RSAPrivateKey` DER (what the signer takes).
    key: Vec<u8>,
    /// Base64url SHA-1 of the DER (`x5t`).
    pub x5t: String,
    /// Base64url SHA-256 of the DER (`x5t#S256`).
    pub x5t_s256: String,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
    pub subject: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("x5t#S256", &self.x5t_s256)
            .field("not_after", &self.not_after)
            .field("key", &"***")
            .finish()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl Certificate {
    /// From PEM text: the first certificate of `cert_pem` and the private key of `key_pem`
    /// (pass the same bytes twice for a combined file).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertificateError> {
        let cert = CertificateDer::pem_slice_iter(cert_pem)
            .find_map(Result::ok)
            .ok_or(CertificateError::NoCertificate)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| CertificateError::NoKey)?;
        let pkcs1 = match key {
            PrivateKeyDer::Pkcs1(k) => k.secret_pkcs1_der().to_vec(),
            PrivateKeyDer::Pkcs8(k) => pkcs8_to_pkcs1(k.secret_pkcs8_der())?,
            _ => return Err(CertificateError::NotRsa),
        };
        Self::new(cert.to_vec(), pkcs1)
    }

    /// From a PKCS#12 (`.pfx`) file: its private key and the certificate that matches it.
    pub fn from_pkcs12(bytes: &[u8], password: &str) -> Result<Self, CertificateError> {
        use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
        let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed)
            .map_err(|_| CertificateError::Pkcs12)?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or(CertificateError::Pkcs12Empty)?;
        let pkcs1 = pkcs8_to_pkcs1(chain.key().as_der())?;
        let mut last = CertificateError::Pkcs12Empty;
        for cert in chain.certs() {
            match Self::new(cert.as_der().to_vec(), pkcs1.clone()) {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn new(der: Vec<u8>, key: Vec<u8>) -> Result<Self, CertificateError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| CertificateError::BadCertificate)?;
        let pair = RsaKeyPair::from_der(&key).map_err(|_| CertificateError::NotRsa)?;
        if pair.public_key().as_ref() != parsed.public_key().subject_public_key.data.as_ref() {
            return Err(CertificateError::KeyMismatch);
        }
        let not_after = parsed.validity().not_after.timestamp();
        let subject = parsed.subject().to_string();
        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        let sha256 = digest::digest(&digest::SHA256, &der);
        Ok(Certificate {
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            not_after,
            subject,
            der,
            key,
        })
    }

    /// The certificate's DER bytes (public).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Seconds until `notAfter` (negative once expired).
    pub fn seconds_left(&self, now: SystemTime) -> i64 {
        self.not_after - unix(now) as i64
    }

    /// A signed client assertion for `client_id` towards `audience` (the exact token endpoint
    /// URL), valid from `now` for [`ASSERTION_LIFETIME`].
    pub fn assertion(
        &self,
        alg: AssertionAlg,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<Secret, CertificateError> {
        let mut header = match alg {
            AssertionAlg::Ps256 => Header::new(Algorithm::PS256),
            AssertionAlg::Rs256 => Header::new(Algorithm::RS256),
        };
        header.typ = Some("JWT".into());
        match alg {
            AssertionAlg::Ps256 => header.x5t_s256 = Some(self.x5t_s256.clone()),
            AssertionAlg::Rs256 => header.x5t = Some(self.x5t.clone()),
        }
        let now = unix(now);
        let claims = Claims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        let key = EncodingKey::from_rsa_der(&self.key);
        jsonwebtoken::encode(&header, &claims, &key)
            .map(Secret::new)
            .map_err(|_| CertificateError::Sign)
    }

    /// The certificate as PEM (public; for registering it with the simulator or a portal).
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }
}

/// The bytes a certificate credential is made of, read now (the files may have rotated).
pub struct FileBytes {
    pub cert: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub password: Option<Secret>,
}

impl FileBytes {
    /// A digest of everything, to notice a rotation without re-parsing.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&self.cert);
        ctx.update(&[0]);
        ctx.update(self.key.as_deref().unwrap_or_default());
        ctx.update(&[0]);
        ctx.update(self.password.as_ref().map_or("", |p| p.expose()).as_bytes());
        ctx.finish().as_ref().to_vec()
    }

    pub fn parse(&self, source: &CertificateSource) -> Result<Certificate, CertificateError> {
        match source {
            CertificateSource::Pem { .. } => {
                Certificate::from_pem(&self.cert, self.key.as_deref().unwrap_or(&self.cert))
            }
            CertificateSource::Pkcs12 { .. } => {
                let password = self.password.as_ref().map_or("", |p| p.expose());
                Certificate::from_pkcs12(&self.cert, password)
            }
        }
    }
}

/// Reads the files (and the PKCS#12 password) of a certificate credential.
pub fn read_files(source: &CertificateSource) -> Result<FileBytes, CertificateError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| CertificateError::Read {
            path: p.display().to_string(),
            reason: e.to_string(),
        })
    };
    match source {
        CertificateSource::Pem {
            cert_file,
            key_file,
        } => Ok(FileBytes {
            cert: read(cert_file)?,
            key: key_file.as_deref().map(read).transpose()?,
            password: None,
        }),
        CertificateSource::Pkcs12 { file, password } => {
            let password = match password {
                Some(r) => Some(r.resolve().map_err(|e| CertificateError::Read {
                    path: "the PKCS#12 password".into(),
                    reason: e.to_string(),
                })?),
                None => None,
            };
            Ok(FileBytes {
                cert: read(file)?,
                key: None,
                password,
            })
        }
    }
}

/// The PKCS#1 key inside a PKCS#8 `PrivateKeyInfo`, when it is an RSA key.
fn pkcs8_to_pkcs1(der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    use pkcs8::der::Decode;
    const RSA: pkcs8::ObjectIdentifier =
        pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|_| CertificateError::NoKey)?;
    if info.algorithm.oid != RSA {
        return Err(CertificateError::NotRsa);
    }
    Ok(info.private_key.as_bytes().to_vec())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `der` as a PEM block labelled `label` (base64 in lines of 64 characters).
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
