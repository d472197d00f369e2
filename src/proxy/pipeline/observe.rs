//! The pipeline's last phase: count, measure and audit each request when its response ENDS.
//!
//! [`track`] wraps the response body; when the body has been sent to its end, fails, or is
//! dropped (the agent went away), the request is finished exactly once: the metrics are
//! updated, one audit record is queued and (at `debug` level) one access log line is written. Latency and
//! `bytes_out` therefore cover the whole streamed body. [`InFlight`] keeps the in-flight gauge
//! right even when a request is cancelled before it has a response. Request body bytes are
//! counted by [`count_body`] as they are forwarded.
//!
//! A response body that fails (Dataverse's body broke off or stalled after the status was sent)
//! is recorded as such: `error` set (`GatewayUpstreamTruncated`, `GatewayUpstreamStalled`),
//! `completed: false`, and counted in `upstream_body_errors`; an agent that went away leaves
//! `error` empty. Every gateway error code is counted in `errors` by tenant, and a request
//! head the HTTP layer refused (431) is audited and counted through [`refused_head`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use prometheus_client::metrics::gauge::Gauge;

use super::Exchange;
use crate::error::GatewayError;
use crate::policy::decision::Reason;
use crate::proxy::body::{Answer, BodyError, BoxBody};
use crate::proxy::gateway::Gateway;
use crate::telemetry::audit::{self, Record};
use crate::telemetry::metrics::NO_TENANT;

/// One request counted in `in_flight_requests` until dropped.
pub struct InFlight(Gauge);

impl InFlight {
    pub fn enter(gateway: &Gateway) -> InFlight {
        gateway.metrics.in_flight.inc();
        InFlight(gateway.metrics.in_flight.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts the bytes of a body as they pass into `counter`.
pub fn count_body(body: BoxBody, counter: Arc<AtomicU64>) -> BoxBody {
    body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    })
    .boxed()
}

struct Pending {
    gateway: Arc<Gateway>,
    ex: Exchange,
    status: u16,
    started: Instant,
    _in_flight: InFlight,
}

/// A response body that finishes its request when it ends or is dropped.
struct Observed {
    inner: Answer,
    bytes_out: u64,
    /// The body's length when known in advance (hyper may stop polling after that many bytes).
    expected: Option<u64>,
    pending: Option<Pending>,
}

/// Wraps `response` so that the request is counted and audited when its body ends.
pub fn track(
    gateway: Arc<Gateway>,
    ex: Exchange,
    response: Response<Answer>,
    started: Instant,
    in_flight: InFlight,
) -> Response<BoxBody> {
    let status = response.status().as_u16();
    let (head, inner) = response.into_parts();
    let expected = inner.size_hint().exact();
    // Built in its box in one step (a `map` closure moved the `Exchange` once more).
    let body = BoxBody::new(Observed {
        expected,
        inner,
        bytes_out: 0,
        pending: Some(Pending {
            gateway,
            ex,
            status,
            started,
            _in_flight: in_flight,
        }),
    });
    Response::from_parts(head, body)
}

impl Observed {
    fn connection(&self) -> Option<&crate::proxy::activity::RequestGuard> {
        self.pending.as_ref().and_then(|p| p.ex.connection.as_ref())
    }

    /// The body failed: record why (the status line was already sent).
    fn failed(&mut self, e: &BodyError) {
        if let Some(p) = &mut self.pending
            && p.ex.error.is_none()
        {
            let tenant = p.ex.tenant.as_ref().map_or("-", |t| t.config.name.as_str());
            let error = match e {
                BodyError::Stalled(_) => GatewayError::UpstreamStalled(format!(
                    "Dataverse for tenant {tenant} stopped sending the response body: {e}"
                )),
                _ => GatewayError::UpstreamTruncated(format!(
                    "Dataverse's response body for tenant {tenant} broke off: {e}"
                )),
            };
            tracing::warn!(tenant, request_id = p.ex.request_id.to_str().unwrap_or(""), error = %error, "upstream response body failed; the agent's stream ends as an error");
            if let Some(t) = &p.ex.tenant {
                t.series.upstream_body_error(error.code());
            }
            p.ex.error = Some(error);
        }
        self.finish(false);
    }

    fn finish(&mut self, completed: bool) {
        // Finished where it lies and then dropped in place: the `Exchange` is not moved.
        if let Some(p) = &mut self.pending {
            let now = finish(p, self.bytes_out, completed);
            if let Some(c) = &mut p.ex.connection {
                c.ending_at(now.into());
            }
            self.pending = None;
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let connection = this.pending.as_ref().and_then(|p| p.ex.connection.as_ref());
        if let Some(c) = connection {
            c.asked();
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    this.bytes_out += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    // The request ends with this frame, and its connection guard with it,
                    // which clears any wait for the agent to read: marking the frame
                    // delivered first would be undone at once (and cost a clock read).
                    this.finish(true);
                } else if let Some(c) = this.connection() {
                    c.delivered();
                }
            }
            Some(Err(e)) => this.failed(e),
            None => this.finish(true),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        let completed = self.inner.is_end_stream() || self.expected == Some(self.bytes_out);
        self.finish(completed);
    }
}

/// Counts and audits the request; returns the time it ended (the clock read for its latency).
fn finish(p: &Pending, bytes_out: u64, completed: bool) -> Instant {
    let Pending {
        gateway,
        ex,
        status,
        started,
        ..
    } = p;
    let status = *status;
    // One clock read for the latency and the audit timestamp.
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(*started);
    let tenant = ex.tenant.as_deref().map(|t| t.config.name.as_str());
    let error_text;
    let (decision, reason) = match (&ex.decision, &ex.error) {
        (Some(d), _) if !d.allowed() => ("deny", d.reason_ref()),
        (Some(d), None) => ("allow", d.reason_ref()),
        (Some(_), Some(e)) => {
            error_text = e.to_string();
            ("allow", Reason::Text(&error_text))
        }
        (None, Some(e)) => {
            error_text = e.to_string();
            ("none", Reason::Text(&error_text))
        }
        (None, None) => ("none", Reason::Text("")),
    };
    let series = ex.tenant.as_deref().map_or(&gateway.unrouted, |t| {
        ex.client
            .as_ref()
            .and_then(|c| t.client_series.get(c))
            .unwrap_or(&t.series)
    });
    series.request(decision, status);
    series.request_duration(elapsed.as_secs_f64());
    if let Some(d) = ex.upstream_latency {
        series.upstream_duration(d.as_secs_f64());
    }
    if let Some(e) = &ex.error {
        series.error(e.code());
        if matches!(e, GatewayError::RateLimited { .. }) {
            series.rate_limited();
        }
    }
    if ex.upstream_status == Some(429) {
        series.upstream_throttled();
    }
    let uses = ex.decision.as_ref().map_or(&[][..], |d| &d.uses[..]);
    let bytes_in = ex
        .bytes_in
        .as_ref()
        .map_or(0, |b| b.load(Ordering::Relaxed));
    let request_id = ex.request_id.to_str().unwrap_or("");
    let error = ex.error.as_ref().map(GatewayError::code);
    if let Some(sink) = gateway.audit() {
        sink.write_via(
            &Record {
                timestamp: crate::clock::wall_at(now),
                request_id,
                tenant,
                client: ex.client.as_deref(),
                method: ex.method.as_str(),
                path: audit::redact_target(ex.uri.path(), ex.uri.query(), sink.query_values()),
                access: uses,
                decision,
                reason,
                error,
                status,
                upstream_status: ex.upstream_status,
                completed,
                latency: elapsed,
                upstream_latency: ex.upstream_latency,
                bytes_in,
                bytes_out,
            },
            ex.mcp_tool.as_ref().map(|t| &*t.0),
        );
    }
    // The audit log is the per-request record; this line is for debugging (its fields are
    // only computed when the level is enabled).
    tracing::debug!(
        target: "dataverse_gateway::access",
        request_id,
        tenant = tenant.unwrap_or(NO_TENANT),
        client = ex.client.as_deref().unwrap_or(""),
        method = %ex.method,
        path = %audit::redact_target(ex.uri.path(), ex.uri.query(), false),
        access = %uses.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        decision,
        reason = %reason,
        status,
        upstream_status = ex.upstream_status.unwrap_or(0),
        completed,
        latency_ms = elapsed.as_millis() as u64,
        bytes_in,
        bytes_out,
    );
    now
}

/// A request the HTTP layer refused before the gateway saw it (a head over the limits: 431):
/// counted and audited like every other answer, with what is known (nothing of the request).
pub fn refused_head(gateway: &Gateway, error: &GatewayError) {
    let status = error.status().as_u16();
    let series = &gateway.unrouted;
    series.request("none", status);
    series.error(error.code());
    if let Some(sink) = gateway.audit() {
        let reason = error.to_string();
        sink.write(&Record {
            timestamp: SystemTime::now(),
            request_id: "",
            tenant: None,
            client: None,
            method: "",
            path: "".into(),
            access: &[],
            decision: "none",
            reason: Reason::Text(&reason),
            error: Some(error.code()),
            status,
            upstream_status: None,
            completed: true,
            latency: std::time::Duration::ZERO,
            upstream_latency: None,
            bytes_in: 0,
            bytes_out: 0,
        });
    }
}
