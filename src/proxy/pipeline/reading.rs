//! The agent's request body: read whole when the policy must see it, streamed otherwise.
//!
//! Invariants (every wait bounded, every buffer budgeted):
//! - a declared `Content-Length` over the tenant's `max_body_bytes` is refused (413) before a
//!   byte is read; a body that grows past it while read is refused too;
//! - a body the policy must read first takes one of the tenant's in-flight slots (so
//!   `max_concurrent` caps the bodies a tenant can have buffered), then is charged against the
//!   process-wide [`Budget`](crate::limit::budget::Budget): its declared length up front, or
//!   piece by piece as a chunked body arrives. Past the budget the answer is 503
//!   `GatewayOverloaded` with `Retry-After`; memory does not grow;
//! - every body, buffered or streamed, fails after a pause longer than
//!   `timeouts.request_body_idle` or when it takes longer than `timeouts.request_body` in all:
//!   the answer is 408 `GatewayRequestTimeout`, audited and counted like any other.

use bytes::{Bytes, BytesMut};
use http::header;
use http_body_util::BodyExt;
use hyper::body::Body;

use super::{Outgoing, too_large};
use crate::config::Timeouts;
use crate::error::GatewayError;
use crate::limit::Slot;
use crate::limit::budget::Charge;
use crate::policy::classify;
use crate::proxy::agent_body::AgentBody;
use crate::proxy::body::{BodyError, TimedRequest};
use crate::proxy::gateway::{Gateway, TenantRuntime};

/// What reading one request's body needs.
pub(super) struct Reading<'a> {
    pub gateway: &'a Gateway,
    pub tenant: &'a TenantRuntime,
    pub timeouts: &'a Timeouts,
}

/// 408: the agent's body was too slow.
pub(super) fn body_timeout(t: &Timeouts) -> GatewayError {
    GatewayError::RequestTimeout(format!(
        "the request body did not arrive in time (no pause over {} ms and at most {} ms in all)",
        t.request_body_idle.as_millis(),
        t.request_body.as_millis()
    ))
}

fn overloaded() -> GatewayError {
    GatewayError::Overloaded {
        message: "the gateway holds as many request bodies in memory as its budget allows \
                  (limits.max_buffered_bytes); retry shortly"
            .into(),
        retry_after_secs: 1,
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

impl Reading<'_> {
    /// The body to send on, with the slot and the budget charge taken for a buffered one.
    pub(super) async fn read_or_stream(
        &self,
        incoming: AgentBody,
        parts: &http::request::Parts,
        resource: &str,
    ) -> Result<(Outgoing, Option<Slot>, Option<Charge>), GatewayError> {
        let limit = self.tenant.config.limits.max_body_bytes;
        let declared = declared_length(&parts.headers);
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        if !classify::needs_body(&parts.method, resource) {
            if incoming.is_end_stream() {
                // No body (a GET, say): nothing to wait for, no timers to set, nothing to box.
                return Ok((Outgoing::Empty, None, None));
            }
            let t = self.timeouts;
            let timed = TimedRequest::new(incoming, t.request_body_idle, t.request_body);
            let flag = timed.timed_out();
            return Ok((Outgoing::Streamed(timed.boxed(), flag), None, None));
        }
        let t = self.timeouts;
        let timed = TimedRequest::new(incoming, t.request_body_idle, t.request_body);
        let limits = &self.tenant.limits;
        limits.pass_cooldown(&parts.method).await?;
        let slot = limits.acquire().await?;
        let mut charge = self.gateway.budget.charge();
        if let Some(n) = declared
            && !charge.grow(n)
        {
            return Err(overloaded());
        }
        let bytes = self.collect(timed, &mut charge, limit, declared).await?;
        charge.settle(bytes.len() as u64);
        Ok((Outgoing::Buffered(bytes), Some(slot), Some(charge)))
    }

    /// Reads the whole body, charging what arrives beyond the charge already taken.
    async fn collect(
        &self,
        mut body: TimedRequest,
        charge: &mut Charge,
        limit: u64,
        declared: Option<u64>,
    ) -> Result<Bytes, GatewayError> {
        let capacity = usize::try_from(declared.unwrap_or(0)).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| match e {
                BodyError::RequestTimeout(_) => body_timeout(self.timeouts),
                _ => GatewayError::BadRequest("the request body could not be read".into()),
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers: not forwarded
            };
            let total = (buf.len() + data.len()) as u64;
            if total > limit {
                return Err(too_large(limit));
            }
            if total > charge.bytes() && !charge.grow(total - charge.bytes()) {
                return Err(overloaded());
            }
            buf.extend_from_slice(&data);
        }
        Ok(buf.freeze())
    }
}
