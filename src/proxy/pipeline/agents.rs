//! The pipeline's client phases: the client's own limits (checked before the tenant's, so a
//! client over its own limit never uses the tenant's allowance), the denial that names the
//! client's layer, and `CallerObjectId` for a client that acts as a Dataverse user.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request};

use crate::config::ClientKey;
use crate::error::GatewayError;
use crate::policy::act_as::{self, CALLER_OBJECT_ID};
use crate::proxy::body::BoxBody;
use crate::proxy::gateway::TenantRuntime;

use super::Exchange;

/// The client's rate and in-flight cap on `tenant`. On refusal the response carries the
/// client's rate headers (the limit that bound).
pub(super) async fn limit(
    tenant: &TenantRuntime,
    client: Option<&ClientKey>,
    ex: &mut Exchange,
) -> Result<(), GatewayError> {
    let Some(limits) = client.and_then(|c| tenant.clients.get(&c.name)) else {
        return Ok(());
    };
    match limits.check_rate().await {
        Ok(state) => ex.rate = state,
        Err(e) => {
            let wait = Duration::from_secs(e.retry_after_secs().unwrap_or(1));
            ex.rate = limits.rate_headers(wait);
            return Err(e);
        }
    }
    if limits.caps_concurrency() {
        ex.client_slot = Some(limits.acquire().await?);
    }
    Ok(())
}

/// The rate state to report once the tenant's rate admitted the request too: the tighter one.
pub(super) fn tighter(
    client: Option<crate::limit::RateState>,
    tenant: Option<crate::limit::RateState>,
) -> Option<crate::limit::RateState> {
    match (client, tenant) {
        (Some(c), Some(t)) if t.remaining() < c.remaining() => Some(t),
        (Some(c), _) => Some(c),
        (None, t) => t,
    }
}

/// A request the tenant's policy allows but the client's narrower one does not.
pub(super) fn client_denied(client: &str, tenant: &str, reason: &str) -> GatewayError {
    GatewayError::PolicyDenied(format!(
        "the client {client}'s policy does not allow this on tenant {tenant} (the tenant's would): {}",
        crate::config::agents::as_client_reason(reason)
    ))
}

/// A `$batch` body with `CallerObjectId` in every part.
pub(super) fn batch_as(
    headers: &HeaderMap,
    body: &[u8],
    object_id: &str,
) -> Result<bytes::Bytes, GatewayError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    act_as::batch_as(content_type, body, object_id).map_err(GatewayError::BadRequest)
}

/// The upstream request with the gateway's own `CallerObjectId` when the client acts as a user.
pub(super) fn with_caller(
    mut req: Request<BoxBody>,
    act_as: Option<&HeaderValue>,
) -> Request<BoxBody> {
    if let Some(v) = act_as {
        req.headers_mut()
            .insert(CALLER_OBJECT_ID.clone(), v.clone());
    }
    req
}
