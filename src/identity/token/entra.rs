//! The Entra ID token endpoint, client-credentials flow with a client secret or a client
//! assertion (certificate, federated token).
//!
//! [`parse_response`] is pure; [`request_token`] is the only I/O. Invariant: an [`EntraError`]'s
//! text never contains the secret or a token — it is built from the status, the `error` field,
//! the numeric AADSTS code and fixed text.

use std::fmt;
use std::time::Duration;

use super::aadsts;
use crate::config::Auth;
use crate::config::secret::Secret;

/// A successful token response.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: Secret,
    pub expires_in: Duration,
    pub refresh_in: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraError {
    /// Entra answered with an error.
    Rejected {
        status: u16,
        error: String,
        code: Option<u32>,
    },
    /// 429: come back after `retry_after` seconds.
    Throttled { retry_after: Option<u64> },
    /// No usable answer (network failure, timeout, unreadable body).
    Unreachable(String),
    /// The secret reference could not be read.
    Credential(String),
    /// No valid token, and the token request in flight has not answered within the time a
    /// request may wait for it (`timeouts.token_wait`).
    Pending { waited_ms: u128 },
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntraError::Rejected {
                status,
                error,
                code: Some(code),
            } => {
                let meaning =
                    aadsts::meaning(*code).unwrap_or("see the Entra ID error code reference");
                write!(
                    f,
                    "Entra ID refused the token request (HTTP {status}, {error}): AADSTS{code}: {meaning}"
                )
            }
            EntraError::Rejected {
                status,
                error,
                code: None,
            } => {
                write!(
                    f,
                    "Entra ID refused the token request (HTTP {status}, {error})"
                )
            }
            EntraError::Throttled {
                retry_after: Some(s),
            } => {
                write!(
                    f,
                    "Entra ID is throttling token requests: retry after {s} s"
                )
            }
            EntraError::Throttled { retry_after: None } => {
                write!(f, "Entra ID is throttling token requests")
            }
            EntraError::Unreachable(why) => {
                write!(f, "the Entra ID token endpoint is unreachable: {why}")
            }
            EntraError::Credential(why) => write!(f, "the client credential cannot be read: {why}"),
            EntraError::Pending { waited_ms } => write!(
                f,
                "no valid token: the token request has not been answered after {waited_ms} ms; retry shortly"
            ),
        }
    }
}

/// Interprets a token endpoint answer.
pub fn parse_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> Result<Issued, EntraError> {
    if status == 429 {
        let retry_after = retry_after.and_then(|v| v.trim().parse().ok());
        return Err(EntraError::Throttled { retry_after });
    }
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        EntraError::Unreachable(format!("HTTP {status} with a body that is not JSON"))
    })?;
    if !(200..300).contains(&status) {
        let error = json
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unknown_error");
        let error = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let description = json.get("error_description").and_then(|d| d.as_str());
        let code = aadsts::code_of(json.get("error_codes"), description);
        return Err(EntraError::Rejected {
            status,
            error,
            code,
        });
    }
    let token = json
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty());
    let expires_in = seconds(json.get("expires_in"));
    match (token, expires_in) {
        (Some(token), Some(expires_in)) if expires_in > 0 => Ok(Issued {
            access_token: Secret::new(token),
            expires_in: Duration::from_secs(expires_in),
            refresh_in: seconds(json.get("refresh_in"))
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }),
        _ => Err(EntraError::Unreachable(
            "the token response lacks access_token or expires_in".into(),
        )),
    }
}

/// Numbers may come as JSON numbers or strings.
pub fn seconds(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// How the client proves who it is in a token request.
pub enum ClientAuth<'a> {
    Secret(&'a Secret),
    /// A signed JWT: a certificate assertion or a federated (workload identity) token.
    Assertion(&'a Secret),
}

/// The assertion type for `client_assertion`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// POSTs the client-credentials request.
pub async fn request_token(
    client: &reqwest::Client,
    auth: &Auth,
    credential: ClientAuth<'_>,
) -> Result<Issued, EntraError> {
    let mut form = vec![
        ("client_id", auth.client_id.as_str()),
        ("scope", auth.scope.as_str()),
        ("grant_type", "client_credentials"),
    ];
    match credential {
        ClientAuth::Secret(s) => form.push(("client_secret", s.expose())),
        ClientAuth::Assertion(a) => {
            form.push(("client_assertion_type", JWT_BEARER));
            form.push(("client_assertion", a.expose()));
        }
    }
    let response = client
        .post(auth.token_endpoint())
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| EntraError::Unreachable(describe(&e)))?;
    read_response(response).await
}

/// Reads a token answer (status, `Retry-After`, body) and interprets it.
pub async fn read_response(response: reqwest::Response) -> Result<Issued, EntraError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .bytes()
        .await
        .map_err(|e| EntraError::Unreachable(describe(&e)))?;
    parse_response(status, retry_after.as_deref(), &body)
}

/// A reqwest error without its URL (which is harmless, but keep messages short).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        let text = e.to_string();
        text.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_with_string_numbers_and_refresh_in() {
        let body = br#"{"token_type":"Bearer","expires_in":"3599","refresh_in":1800,"access_token":"eyJ.x.y"}"#;
        let issued = parse_response(200, None, body).unwrap();
        assert_eq!(issued.expires_in, Duration::from_secs(3599));
        assert_eq!(issued.refresh_in, Some(Duration::from_secs(1800)));
        assert_eq!(issued.access_token.expose(), "eyJ.x.y");
    }

    #[test]
    fn errors_name_the_code_and_meaning_but_nothing_else() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. secret=hunter2","error_codes":[7000215]}"#;
        let err = parse_response(401, None, body).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("AADSTS7000215"), "{text}");
        assert!(text.contains("wrong client secret"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn throttling_and_garbage() {
        let err = parse_response(429, Some("7"), b"Too many requests").unwrap_err();
        assert_eq!(
            err,
            EntraError::Throttled {
                retry_after: Some(7)
            }
        );
        assert!(matches!(
            parse_response(502, None, b"<html>"),
            Err(EntraError::Unreachable(_))
        ));
        assert!(matches!(
            parse_response(200, None, b"{}"),
            Err(EntraError::Unreachable(_))
        ));
    }
}
