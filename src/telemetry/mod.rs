//! Layer `telemetry`: what the gateway reports about the traffic it serves.
//!
//! [`metrics`] holds the Prometheus families; [`audit`] shapes and writes one JSON record per
//! agent request, off the request path. Guarantee: recording never blocks or changes a request,
//! and no secret reaches a metric label or an audit record. May use [`crate::policy`] (to name
//! what a request touched) and the layers below it, never the proxy shell above.

pub mod audit;
pub mod metrics;
