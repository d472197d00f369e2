//! Managed identity: tokens from the Azure Instance Metadata Service (IMDS) or, on App Service
//! and Functions, from the local identity endpoint (`IDENTITY_ENDPOINT` with the
//! `X-IDENTITY-HEADER` secret); see docs/configuration.md.
//!
//! [`Flow::detect`] chooses the flow from the config and the environment (given as a lookup
//! function, so it is testable); [`parse_imds`] and [`parse_app_service`] are pure;
//! [`request`] is the I/O. IMDS answers 404/410/429/5xx while it warms up or is busy, so those
//! are retried with exponential backoff (a bounded number of times); any other failure is
//! returned at once. Invariant: no token or identity header value appears in an error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::entra::{self, EntraError, Issued};
use crate::config::secret::Secret;

/// Azure's IMDS token endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// Delays before the retries of a failed IMDS request.
const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Where a managed identity token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Flow {
    Imds { endpoint: String },
    AppService { endpoint: String, header: Secret },
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flow::Imds { endpoint } => write!(f, "IMDS {endpoint}"),
            Flow::AppService { endpoint, .. } => write!(f, "App Service {endpoint}"),
        }
    }
}

impl Flow {
    /// App Service when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set, else IMDS at
    /// `endpoint` (default [`IMDS_ENDPOINT`]).
    pub fn detect(endpoint: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Flow {
        match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) if !endpoint.is_empty() => Flow::AppService {
                endpoint,
                header: Secret::new(header),
            },
            _ => Flow::Imds {
                endpoint: endpoint.unwrap_or(IMDS_ENDPOINT).to_string(),
            },
        }
    }
}

/// The `resource` parameter for a `.default` scope.
pub fn resource_of(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

/// Gets a token for `resource` (the Dataverse URL).
pub async fn request(
    http: &reqwest::Client,
    flow: &Flow,
    client_id: Option<&str>,
    resource: &str,
    now: SystemTime,
) -> Result<Issued, EntraError> {
    let mut attempt = 0;
    loop {
        let result = once(http, flow, client_id, resource, now).await;
        let retryable = matches!(flow, Flow::Imds { .. })
            && matches!(&result, Err(Failure::Status(s, _)) if matches!(s, 404 | 410 | 429 | 500..=599));
        match result {
            Ok(issued) => return Ok(issued),
            Err(f) if retryable && attempt < RETRY_DELAYS.len() => {
                tracing::debug!(attempt, error = %f.error(), "managed identity endpoint busy; retrying");
                tokio::time::sleep(RETRY_DELAYS[attempt]).await;
                attempt += 1;
            }
            Err(f) => return Err(f.error()),
        }
    }
}

enum Failure {
    Status(u16, EntraError),
    Other(EntraError),
}

impl Failure {
    fn error(&self) -> EntraError {
        match self {
            Failure::Status(_, e) | Failure::Other(e) => e.clone(),
        }
    }
}

async fn once(
    http: &reqwest::Client,
    flow: &Flow,
    client_id: Option<&str>,
    resource: &str,
    now: SystemTime,
) -> Result<Issued, Failure> {
    let mut query = vec![("resource", resource)];
    if let Some(id) = client_id {
        query.push(("client_id", id));
    }
    let request = match flow {
        Flow::Imds { endpoint } => {
            query.push(("api-version", IMDS_API_VERSION));
            http.get(endpoint).header("Metadata", "true")
        }
        Flow::AppService { endpoint, header } => {
            query.push(("api-version", APP_SERVICE_API_VERSION));
            http.get(endpoint)
                .header("X-IDENTITY-HEADER", header.expose())
        }
    };
    let response = request
        .query(&query)
        .send()
        .await
        .map_err(|e| Failure::Other(EntraError::Unreachable(entra::describe(&e))))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Other(EntraError::Unreachable(entra::describe(&e))))?;
    let parsed = match flow {
        Flow::Imds { .. } => parse_imds(status, &body),
        Flow::AppService { .. } => parse_app_service(status, &body, now),
    };
    parsed.map_err(|e| Failure::Status(status, e))
}

/// An IMDS answer: `expires_in` (a string) and `access_token`.
pub fn parse_imds(status: u16, body: &[u8]) -> Result<Issued, EntraError> {
    let json = json_of(status, body)?;
    let expires_in = entra::seconds(json.get("expires_in"));
    issued(&json, expires_in)
}

/// An App Service answer: `expires_on` (Unix seconds, a string) and `access_token`.
pub fn parse_app_service(status: u16, body: &[u8], now: SystemTime) -> Result<Issued, EntraError> {
    let json = json_of(status, body)?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let expires_in = entra::seconds(json.get("expires_in"))
        .or_else(|| entra::seconds(json.get("expires_on")).map(|on| on.saturating_sub(now)));
    issued(&json, expires_in)
}

fn json_of(status: u16, body: &[u8]) -> Result<serde_json::Value, EntraError> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status)
        && let Some(json) = json
    {
        return Ok(json);
    }
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(|e| {
            e.as_str()
                .map(str::to_string)
                .or_else(|| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
        })
        .unwrap_or_else(|| "no_json_error".into());
    let error: String = error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    Err(EntraError::Rejected {
        status,
        error: format!("managed identity: {error}"),
        code: None,
    })
}

fn issued(json: &serde_json::Value, expires_in: Option<u64>) -> Result<Issued, EntraError> {
    let token = json
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty());
    match (token, expires_in) {
        (Some(token), Some(secs)) if secs > 0 => Ok(Issued {
            access_token: Secret::new(token),
            expires_in: Duration::from_secs(secs),
            refresh_in: entra::seconds(json.get("refresh_in"))
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }),
        _ => Err(EntraError::Unreachable(
            "the managed identity answer lacks access_token or its expiry".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_follows_the_environment() {
        let none = |_: &str| None;
        assert_eq!(
            Flow::detect(None, none),
            Flow::Imds {
                endpoint: IMDS_ENDPOINT.into()
            }
        );
        let app = |k: &str| Some(format!("value-of-{k}"));
        let flow = Flow::detect(Some("http://127.0.0.1:1/x"), app);
        assert!(
            matches!(flow, Flow::AppService { ref endpoint, .. } if endpoint == "value-of-IDENTITY_ENDPOINT")
        );
        assert!(!format!("{flow:?}").contains("value-of-IDENTITY_HEADER"));
    }

    #[test]
    fn answers_with_string_numbers() {
        let imds = br#"{"access_token":"t","expires_in":"3599","expires_on":"1","resource":"r","token_type":"Bearer"}"#;
        assert_eq!(parse_imds(200, imds).unwrap().expires_in.as_secs(), 3599);
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let app =
            br#"{"access_token":"t","expires_on":"4600","resource":"r","token_type":"Bearer"}"#;
        assert_eq!(
            parse_app_service(200, app, now)
                .unwrap()
                .expires_in
                .as_secs(),
            3600
        );
        let err = parse_imds(
            400,
            br#"{"error":"invalid_request","error_description":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid_request"), "{err}");
        assert_eq!(
            resource_of("https://o.crm.dynamics.com/.default"),
            "https://o.crm.dynamics.com"
        );
    }
}
