//! Gateway-made errors and the ONE place they become responses.
//!
//! Every error knows who is at fault and whether retrying can help; [`GatewayError::status`],
//! [`GatewayError::code`] and [`GatewayError::body`] give Dataverse's own error
//! shape (docs/operations.md lists the codes),
//! `{"error":{"code":"<Code>","message":"<one sentence>"}}` that Dataverse SDKs display.
//! Messages never contain a secret, a token or an assertion: they are built from fixed text,
//! names from the config and Entra error codes only.

use bytes::Bytes;
use http::StatusCode;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The agent sent something we refuse.
    Downstream,
    /// Dataverse or Entra ID failed.
    Upstream,
    /// Limits the gateway imposes on purpose.
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    PolicyDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    TokenUnavailable(String),
    #[error("{0}")]
    UpstreamTimeout(String),
    /// The agent's request head or body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// The request head is over the gateway's limits (answered by the HTTP layer itself).
    #[error("{0}")]
    HeadersTooLarge(String),
    /// A budget of the process is spent (buffered bodies); come back shortly.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after_secs: u64,
    },
    /// Dataverse's response body broke off after the status was sent: the agent's stream ends
    /// as an error (recorded in the audit log and metrics; never a response of its own).
    #[error("{0}")]
    UpstreamTruncated(String),
    /// Dataverse's response body paused longer than `timeouts.upstream_body_idle` (as above).
    #[error("{0}")]
    UpstreamStalled(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::PolicyDenied(_) => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Upstream(_) => StatusCode::BAD_GATEWAY,
            GatewayError::TokenUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::UpstreamTruncated(_) => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamStalled(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `error.code` of the JSON body; also the metric and audit label.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_) => "GatewayBadRequest",
            GatewayError::Unauthorized(_) => "GatewayUnauthorized",
            GatewayError::PolicyDenied(_) => "GatewayPolicyDenied",
            GatewayError::NotFound(_) => "GatewayNotFound",
            GatewayError::PayloadTooLarge(_) => "GatewayPayloadTooLarge",
            GatewayError::RateLimited { .. } => "GatewayRateLimited",
            GatewayError::Upstream(_) => "GatewayUpstreamError",
            GatewayError::TokenUnavailable(_) => "GatewayTokenUnavailable",
            GatewayError::UpstreamTimeout(_) => "GatewayUpstreamTimeout",
            GatewayError::RequestTimeout(_) => "GatewayRequestTimeout",
            GatewayError::HeadersTooLarge(_) => "GatewayHeadersTooLarge",
            GatewayError::Overloaded { .. } => "GatewayOverloaded",
            GatewayError::UpstreamTruncated(_) => "GatewayUpstreamTruncated",
            GatewayError::UpstreamStalled(_) => "GatewayUpstreamStalled",
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            GatewayError::BadRequest(_)
            | GatewayError::Unauthorized(_)
            | GatewayError::PolicyDenied(_)
            | GatewayError::NotFound(_)
            | GatewayError::PayloadTooLarge(_)
            | GatewayError::RequestTimeout(_)
            | GatewayError::HeadersTooLarge(_) => Fault::Downstream,
            GatewayError::RateLimited { .. } | GatewayError::Overloaded { .. } => Fault::Gateway,
            GatewayError::Upstream(_)
            | GatewayError::TokenUnavailable(_)
            | GatewayError::UpstreamTimeout(_)
            | GatewayError::UpstreamTruncated(_)
            | GatewayError::UpstreamStalled(_) => Fault::Upstream,
        }
    }

    /// Whether the same request may succeed later unchanged.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::RateLimited { .. }
                | GatewayError::Upstream(_)
                | GatewayError::TokenUnavailable(_)
                | GatewayError::UpstreamTimeout(_)
                | GatewayError::Overloaded { .. }
                | GatewayError::UpstreamTruncated(_)
                | GatewayError::UpstreamStalled(_)
        )
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            GatewayError::RateLimited {
                retry_after_secs, ..
            }
            | GatewayError::Overloaded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The Dataverse-shaped JSON body.
    pub fn body(&self) -> Bytes {
        error_body(self.code(), &self.to_string())
    }
}

/// `{"error":{"code":..,"message":..}}`, correctly escaped.
pub fn error_body(code: &str, message: &str) -> Bytes {
    let value = serde_json::json!({ "error": { "code": code, "message": message } });
    Bytes::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_status() {
        let e = GatewayError::PolicyDenied("GET on `accounts` is \"not\" allowed".into());
        assert_eq!(e.status(), 403);
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "GatewayPolicyDenied");
        assert_eq!(
            v["error"]["message"],
            "GET on `accounts` is \"not\" allowed"
        );
        let r = GatewayError::RateLimited {
            message: "slow down".into(),
            retry_after_secs: 3,
        };
        assert_eq!(
            (r.status().as_u16(), r.retry_after_secs(), r.fault()),
            (429, Some(3), Fault::Gateway)
        );
        assert!(GatewayError::TokenUnavailable("x".into()).retryable());
        assert!(!GatewayError::BadRequest("x".into()).retryable());
    }
}
