//! Validation of one Entra ID access token, pure: no I/O, no clock (the time is passed in).
//!
//! Order: the header is read first and anything but `RS256` with a `kid` is refused before a
//! key is looked at (never `none`, never HMAC: a key is only ever used as an RSA public key);
//! then the signature over `header.payload` with the JWK named by `kid`; then the claims:
//! `tid` (the agents' tenant), `iss` (the v2 or v1 issuer of that tenant), `aud`, `nbf`/`exp`
//! with [`SKEW_SECS`] of tolerance. A [`Rejection`]'s text never holds the token or a claim value
//! an attacker chose beyond a bounded, sanitised excerpt.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Clock skew tolerated on `nbf` and `exp`.
pub const SKEW_SECS: u64 = 300;
/// Longest token read (Entra tokens with many roles stay far below).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token is refused (the 401's reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm `{0}` is not accepted (RS256 only)")]
    Algorithm(String),
    #[error("the token is signed by an unknown signer (no key `{0}` in the issuer's key set)")]
    UnknownSigner(String),
    #[error("the token's signature is not valid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued for another audience, not this gateway")]
    Audience,
    #[error("the token was issued for another Entra tenant")]
    Tenant,
    #[error("the token's issuer is not Entra ID for the agents' tenant")]
    Issuer,
    #[error("the signing keys of the agents' tenant are unavailable: {0}")]
    KeysUnavailable(String),
}

/// An RSA public key from the issuer's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// A token split and its header read; the signature is not checked yet.
#[derive(Debug)]
pub struct Unverified<'t> {
    pub kid: String,
    signing_input: &'t str,
    payload: &'t str,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims the gateway reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Claims {
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub aud: Audience,
    #[serde(default)]
    pub tid: String,
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(default)]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub oid: Option<String>,
    /// v1: the client's application id.
    #[serde(default)]
    pub appid: Option<String>,
    /// v2: the client's application id.
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `aud` is a string, or (rarely) a list.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub tenant_id: &'a str,
    pub audience: &'a str,
    /// Accepted issuers (v2 and v1 of `tenant_id`).
    pub issuers: &'a [String],
}

/// The identity a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `appid` (v1) or `azp` (v2), lowercase.
    pub app_id: Option<String>,
    /// `oid`, lowercase.
    pub object_id: Option<String>,
    pub roles: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Splits `token` and reads its header: RS256 with a `kid`, or a rejection.
pub fn parse(token: &str) -> Result<Unverified<'_>, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let header: Header = decode_json(h)?;
    if header.alg != "RS256" {
        return Err(Rejection::Algorithm(excerpt(&header.alg)));
    }
    let kid = header.kid.ok_or(Rejection::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| Rejection::Malformed)?;
    Ok(Unverified {
        kid,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload: p,
        signature,
    })
}

impl Unverified<'_> {
    /// Checks the signature with `key` (the JWK named by `kid`) and reads the claims.
    pub fn verify(&self, key: &Jwk) -> Result<Claims, Rejection> {
        let public = RsaPublicKeyComponents {
            n: &key.n[..],
            e: &key.e[..],
        };
        public
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                self.signing_input.as_bytes(),
                &self.signature,
            )
            .map_err(|_| Rejection::Signature)?;
        decode_json(self.payload)
    }
}

/// Checks a verified token's claims at `now` (seconds since the Unix epoch).
pub fn check_claims(claims: &Claims, expect: &Expect<'_>, now: u64) -> Result<Identity, Rejection> {
    if !claims.tid.eq_ignore_ascii_case(expect.tenant_id) {
        return Err(Rejection::Tenant);
    }
    if !expect.issuers.iter().any(|i| i == &claims.iss) {
        return Err(Rejection::Issuer);
    }
    let audience_ok = match &claims.aud {
        Audience::One(a) => a == expect.audience,
        Audience::Many(all) => all.iter().any(|a| a == expect.audience),
        Audience::None => false,
    };
    if !audience_ok {
        return Err(Rejection::Audience);
    }
    let exp = claims.exp.ok_or(Rejection::Malformed)?;
    if now > exp.saturating_add(SKEW_SECS) {
        return Err(Rejection::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(SKEW_SECS))
    {
        return Err(Rejection::NotYetValid);
    }
    let lower = |s: &Option<String>| s.as_ref().map(|s| s.to_ascii_lowercase());
    Ok(Identity {
        app_id: lower(&claims.azp).or_else(|| lower(&claims.appid)),
        object_id: lower(&claims.oid),
        roles: claims.roles.clone(),
        expires_at: exp.saturating_add(SKEW_SECS),
    })
}

/// A JWKS document's RSA signing keys (others are skipped).
pub fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Key>,
    }
    #[derive(Deserialize)]
    struct Key {
        kty: String,
        #[serde(default)]
        kid: Option<String>,
        #[serde(default)]
        n: Option<String>,
        #[serde(default)]
        e: Option<String>,
        #[serde(default, rename = "use")]
        usage: Option<String>,
    }
    let set: Set =
        serde_json::from_slice(body).map_err(|_| "the JWKS is not valid JSON".to_string())?;
    let keys = set
        .keys
        .into_iter()
        .filter(|k| k.kty == "RSA" && k.usage.as_deref().is_none_or(|u| u == "sig"))
        .filter_map(|k| {
            Some(Jwk {
                kid: k.kid?,
                n: URL_SAFE_NO_PAD.decode(k.n?).ok()?,
                e: URL_SAFE_NO_PAD.decode(k.e?).ok()?,
            })
        })
        .collect();
    Ok(keys)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)
}

/// At most 16 printable ASCII characters of an attacker-chosen value.
fn excerpt(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests;
