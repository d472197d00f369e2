//! Key Vault's REST API (`api-version` [`API_VERSION`]) over the gateway's HTTP client: get a
//! secret's current version, get a certificate (its public part), and `sign` a digest with a key.
//!
//! The `parse_*` functions are pure; [`get_secret`], [`get_certificate`] and [`sign`] are the
//! I/O. Invariants: a [`VaultError`] never holds a secret value, a token or a response body —
//! only the vault, the object, the status, Key Vault's error code and the caller's identity
//! (app and object ids, which Key Vault itself prints); 401/403 name the role that is missing.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::config::secret::Secret;

pub const API_VERSION: &str = "7.4";

/// What the gateway asked Key Vault for; decides the role a refusal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A secret, or the secret of a certificate (with its private key).
    GetSecret,
    /// A certificate's public part.
    GetCertificate,
    /// A signature with a key.
    Sign,
}

impl Operation {
    /// The built-in Azure role that grants the operation.
    pub fn role(self) -> &'static str {
        match self {
            Operation::GetSecret => "Key Vault Secrets User",
            Operation::GetCertificate => "Key Vault Certificate User (or Key Vault Reader)",
            Operation::Sign => "Key Vault Crypto User",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Operation::GetSecret => "secret",
            Operation::GetCertificate => "certificate",
            Operation::Sign => "key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// 401/403: the message names the vault, the identity, the role and the object.
    #[error("{message}")]
    Denied { status: u16, message: String },
    #[error(
        "Key Vault {vault} has no {what} `{name}` (HTTP 404{code}): check the name, or whether it was deleted or disabled"
    )]
    NotFound {
        vault: String,
        code: String,
        what: &'static str,
        name: String,
    },
    #[error("Key Vault {vault} is throttling requests (HTTP 429): retry after {retry_after} s")]
    Throttled { vault: String, retry_after: u64 },
    #[error("Key Vault {vault} is unreachable: {why}")]
    Unreachable { vault: String, why: String },
    #[error("Key Vault {vault} answered HTTP {status}{code} for the {what} `{name}`")]
    Failed {
        vault: String,
        status: u16,
        code: String,
        what: &'static str,
        name: String,
    },
    #[error("no Key Vault token for {identity}: {why}")]
    Token { identity: String, why: String },
    /// The object was read but cannot be used (wrong format, wrong key, no key).
    #[error("Key Vault {vault}, {what} `{name}`: {why}")]
    Unusable {
        vault: String,
        what: &'static str,
        name: String,
        why: String,
    },
}

/// Retry-After when Key Vault throttles without saying how long.
pub const DEFAULT_RETRY_AFTER: u64 = 10;

/// A secret's current version.
#[derive(Debug, Clone)]
pub struct SecretBundle {
    pub value: Secret,
    pub version: String,
    pub content_type: Option<String>,
    /// `attributes.exp`, Unix seconds.
    pub expires: Option<i64>,
}

/// A certificate's public part.
#[derive(Debug, Clone)]
pub struct CertificateBundle {
    pub der: Vec<u8>,
    pub version: String,
    /// The key's name and version (from `kid`), which `sign` takes.
    pub key_name: String,
    pub key_version: String,
}

/// Who asked and for what: the context a failure is reported in.
pub struct Call<'a> {
    pub vault: &'a str,
    pub name: &'a str,
    pub op: Operation,
    pub identity: &'a str,
}

impl Call<'_> {
    /// The error for a non-2xx answer.
    pub fn failure(&self, status: u16, retry_after: Option<&str>, body: &[u8]) -> VaultError {
        let json: Value = serde_json::from_slice(body).unwrap_or_default();
        let code = json["error"]["code"]
            .as_str()
            .map(|c| format!(", {}", clean(c, 64)))
            .unwrap_or_default();
        let vault = self.vault.to_string();
        let (what, name) = (self.op.what(), self.name.to_string());
        match status {
            401 | 403 => {
                let caller = json["error"]["message"].as_str().and_then(caller_of);
                let identity = match caller {
                    Some(c) => format!("{} ({c})", self.identity),
                    None => self.identity.to_string(),
                };
                let role = self.op.role();
                VaultError::Denied {
                    status,
                    message: format!(
                        "Key Vault {vault} refused {identity} (HTTP {status}{code}): grant it the {role} role on the {what} `{name}` or the vault"
                    ),
                }
            }
            404 => VaultError::NotFound {
                vault,
                code,
                what,
                name,
            },
            429 => VaultError::Throttled {
                vault,
                retry_after: retry_after
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(DEFAULT_RETRY_AFTER),
            },
            _ => VaultError::Failed {
                vault,
                status,
                code,
                what,
                name,
            },
        }
    }

    fn unusable(&self, why: impl Into<String>) -> VaultError {
        VaultError::Unusable {
            vault: self.vault.to_string(),
            what: self.op.what(),
            name: self.name.to_string(),
            why: why.into(),
        }
    }
}

/// The `appid` and `oid` of Key Vault's `Caller: appid=..;oid=..;iss=..` line in a 403 message
/// (ids, not secrets; nothing else of the message is kept).
fn caller_of(message: &str) -> Option<String> {
    let rest = message.split("Caller: ").nth(1)?;
    let line = rest.split(['\r', '\n']).next()?;
    let ids: Vec<String> = line
        .split(';')
        .filter_map(|field| {
            let (key, value) = field.trim().split_once('=')?;
            let id = matches!(key, "appid" | "oid")
                && !value.is_empty()
                && value.len() <= 64
                && value.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            id.then(|| format!("{key}={value}"))
        })
        .collect();
    (!ids.is_empty()).then(|| ids.join(";"))
}

/// Keeps the characters of ids and URLs only, at most `max` of them.
fn clean(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "=;:/._-".contains(*c))
        .take(max)
        .collect()
}

/// The last path segment of an object id (`https://v/secrets/name/VERSION`).
fn version_of(id: &str) -> Option<String> {
    let last = id.trim_end_matches('/').rsplit('/').next()?;
    (!last.is_empty()).then(|| clean(last, 64))
}

/// A `GET secrets/{name}` answer.
pub fn parse_secret(call: &Call<'_>, body: &[u8]) -> Result<SecretBundle, VaultError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| call.unusable("the answer is not JSON"))?;
    let value = json["value"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| call.unusable("the answer has no value"))?;
    let version = json["id"]
        .as_str()
        .and_then(version_of)
        .ok_or_else(|| call.unusable("the answer has no id"))?;
    if json["attributes"]["enabled"].as_bool() == Some(false) {
        return Err(call.unusable("the current version is disabled"));
    }
    Ok(SecretBundle {
        value: Secret::new(value),
        version,
        content_type: json["contentType"].as_str().map(|c| clean(c, 64)),
        expires: json["attributes"]["exp"].as_i64(),
    })
}

/// A `GET certificates/{name}` answer.
pub fn parse_certificate(call: &Call<'_>, body: &[u8]) -> Result<CertificateBundle, VaultError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| call.unusable("the answer is not JSON"))?;
    let der = json["cer"]
        .as_str()
        .and_then(|c| STANDARD.decode(c).ok())
        .ok_or_else(|| call.unusable("the answer has no certificate (cer)"))?;
    let version = json["id"]
        .as_str()
        .and_then(version_of)
        .ok_or_else(|| call.unusable("the answer has no id"))?;
    let kid = json["kid"]
        .as_str()
        .ok_or_else(|| call.unusable("the certificate has no key (kid)"))?;
    let mut parts = kid.trim_end_matches('/').rsplit('/');
    let (key_version, key_name) = match (parts.next(), parts.next()) {
        (Some(v), Some(n)) if !v.is_empty() && !n.is_empty() => (clean(v, 64), clean(n, 127)),
        _ => return Err(call.unusable("the certificate's key id is not keys/NAME/VERSION")),
    };
    Ok(CertificateBundle {
        der,
        version,
        key_name,
        key_version,
    })
}

/// A `sign` answer: the signature bytes.
pub fn parse_signature(call: &Call<'_>, body: &[u8]) -> Result<Vec<u8>, VaultError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| call.unusable("the answer is not JSON"))?;
    json["value"]
        .as_str()
        .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| call.unusable("the sign answer has no signature"))
}

/// One request: the body of a 2xx answer, or the error it means.
async fn send(
    call: &Call<'_>,
    request: reqwest::RequestBuilder,
    token: &Secret,
) -> Result<bytes::Bytes, VaultError> {
    let response = request
        .query(&[("api-version", API_VERSION)])
        .bearer_auth(token.expose())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| VaultError::Unreachable {
            vault: call.vault.to_string(),
            why: crate::identity::token::entra::describe(&e),
        })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .bytes()
        .await
        .map_err(|e| VaultError::Unreachable {
            vault: call.vault.to_string(),
            why: crate::identity::token::entra::describe(&e),
        })?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(call.failure(status, retry_after.as_deref(), &body))
    }
}

/// `GET {vault}/secrets/{name}`: the current version.
pub async fn get_secret(
    http: &reqwest::Client,
    call: &Call<'_>,
    token: &Secret,
) -> Result<SecretBundle, VaultError> {
    let url = format!("{}/secrets/{}", call.vault, call.name);
    let body = send(call, http.get(url), token).await?;
    parse_secret(call, &body)
}

/// `GET {vault}/certificates/{name}`: the current version's public certificate and key id.
pub async fn get_certificate(
    http: &reqwest::Client,
    call: &Call<'_>,
    token: &Secret,
) -> Result<CertificateBundle, VaultError> {
    let url = format!("{}/certificates/{}", call.vault, call.name);
    let body = send(call, http.get(url), token).await?;
    parse_certificate(call, &body)
}

/// `POST {vault}/keys/{name}/{version}/sign` with `alg` (`PS256`/`RS256`) over a SHA-256 digest.
pub async fn sign(
    http: &reqwest::Client,
    call: &Call<'_>,
    key_version: &str,
    alg: &str,
    digest: &[u8],
    token: &Secret,
) -> Result<Vec<u8>, VaultError> {
    let url = format!("{}/keys/{}/{key_version}/sign", call.vault, call.name);
    let body = serde_json::json!({ "alg": alg, "value": URL_SAFE_NO_PAD.encode(digest) });
    let answer = send(call, http.post(url).json(&body), token).await?;
    parse_signature(call, &answer)
}

/// Backoff for a failure: Key Vault's Retry-After when throttled, else `default`.
pub fn backoff_for(e: &VaultError, default: Duration) -> Duration {
    match e {
        VaultError::Throttled { retry_after, .. } => Duration::from_secs(*retry_after),
        _ => default,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
