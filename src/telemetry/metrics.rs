//! Prometheus metrics (prometheus-client), served on `admin_listen` at `/metrics`.
//!
//! [`Metrics`] holds the families the request path and the reload loop update; it lives in the
//! gateway (not in a config snapshot), so counts survive reloads. Token figures are not
//! pushed: a [`Collector`] reads them at scrape time from a [`Live`] source (the gateway's
//! current snapshot), so this module never depends on the proxy layer above it.
//! Labels carry tenant names, configured client names (`-` for none), decisions and status
//! classes only: never a path, a client key, a token claim or anything an agent controls
//! freely, so cardinality stays bounded by the config.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod collect;

use collect::TokenCollector;
pub use collect::{Figures, Live, TenantFigures};

/// The `Content-Type` of the Prometheus text format served at `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The tenant label of requests that never reached a tenant (unknown route, no client key).
pub const NO_TENANT: &str = "-";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub tenant: String,
    /// A configured client's name, or `-`.
    pub client: String,
    /// `allow`, `deny` or `none` (refused before the policy was asked).
    pub decision: &'static str,
    /// `2xx`, `4xx`, ...
    pub status_class: &'static str,
}

/// `1xx` .. `9xx` for a status code (hyper's codes are 100..=999).
pub fn status_class(status: u16) -> &'static str {
    const CLASSES: [&str; 10] = [
        "0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx",
    ];
    CLASSES[usize::from(status / 100).min(9)]
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

/// A tenant and a configured client's name (or `-`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub tenant: String,
    pub client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// A gateway-made error (or a broken upstream body) by tenant and error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub tenant: String,
    pub code: &'static str,
}

/// One MCP tool call: tenant, tool (a listed tool's name, else `unknown`) and `result` (`ok`,
/// `tool_error`: refused or failed, `invalid_params`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct McpCallLabels {
    pub tenant: String,
    pub tool: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenResultLabels {
    tenant: String,
    result: String,
}

type HistogramFamily = Family<TenantLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms .. ~82 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every series the gateway pushes. Clones share the same counters.
#[derive(Clone)]
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily,
    pub upstream_duration: HistogramFamily,
    pub in_flight: Gauge,
    pub rate_limited: Family<ClientLabels, Counter>,
    pub upstream_throttled: Family<TenantLabel, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub audit_dropped: Counter,
    /// Gateway error answers and broken upstream bodies, by tenant and code.
    pub errors: Family<ErrorLabels, Counter>,
    /// Upstream response bodies that broke off (`truncated`) or paused too long (`stalled`).
    pub upstream_body_errors: Family<ErrorLabels, Counter>,
    /// Agent connections the gateway closed or refused itself, by reason.
    pub connections_closed: Family<ReasonLabel, Counter>,
    /// MCP tool calls (their Web API requests are counted in `requests` like any other).
    pub mcp_tool_calls: Family<McpCallLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let reloads = Family::<ResultLabel, Counter>::default();
        for result in ["ok", "error"] {
            // Present from the start, so "no reload yet" reads as 0, not as a missing series.
            let _ = reloads.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        Metrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            rate_limited: Family::default(),
            upstream_throttled: Family::default(),
            reloads,
            audit_dropped: Counter::default(),
            errors: Family::default(),
            upstream_body_errors: Family::default(),
            connections_closed: Family::default(),
            mcp_tool_calls: Family::default(),
        }
    }
}

/// One tenant's request series, looked up in their families once (on first use) instead of
/// hashing a label set per request. Handles share their counts with the families, so what
/// `/metrics` shows is unchanged, and a series still appears only once it has been used.
pub struct TenantSeries {
    families: Metrics,
    tenant: String,
    /// The client label of the request and rate-limit series: a configured client, or `-`.
    client: String,
    /// By decision (`allow`, `deny`, `none`) and status class (`0xx`..`9xx`).
    requests: [OnceLock<Counter>; 30],
    request_duration: OnceLock<Histogram>,
    upstream_duration: OnceLock<Histogram>,
    rate_limited: OnceLock<Counter>,
    upstream_throttled: OnceLock<Counter>,
}

impl TenantSeries {
    pub fn new(families: &Metrics, tenant: &str) -> Self {
        Self::for_client(families, tenant, NO_TENANT)
    }

    /// The series of one configured client's requests to `tenant`.
    pub fn for_client(families: &Metrics, tenant: &str, client: &str) -> Self {
        TenantSeries {
            families: families.clone(),
            tenant: tenant.to_string(),
            client: client.to_string(),
            requests: std::array::from_fn(|_| OnceLock::new()),
            request_duration: OnceLock::new(),
            upstream_duration: OnceLock::new(),
            rate_limited: OnceLock::new(),
            upstream_throttled: OnceLock::new(),
        }
    }

    /// Counts one finished request.
    pub fn request(&self, decision: &'static str, status: u16) {
        let d = match decision {
            "allow" => 0,
            "deny" => 1,
            _ => 2,
        };
        let class = usize::from(status / 100).min(9);
        self.requests[d * 10 + class]
            .get_or_init(|| {
                self.families
                    .requests
                    .get_or_create(&RequestLabels {
                        tenant: self.tenant.clone(),
                        client: self.client.clone(),
                        decision,
                        status_class: status_class(status),
                    })
                    .clone()
            })
            .inc();
    }

    pub fn request_duration(&self, seconds: f64) {
        self.handle(&self.request_duration, &self.families.request_duration)
            .observe(seconds);
    }

    pub fn upstream_duration(&self, seconds: f64) {
        self.handle(&self.upstream_duration, &self.families.upstream_duration)
            .observe(seconds);
    }

    pub fn rate_limited(&self) {
        let labels = ClientLabels {
            tenant: self.tenant.clone(),
            client: self.client.clone(),
        };
        self.rate_limited
            .get_or_init(|| self.families.rate_limited.get_or_create_owned(&labels))
            .inc();
    }

    pub fn upstream_throttled(&self) {
        self.handle(&self.upstream_throttled, &self.families.upstream_throttled)
            .inc();
    }

    /// Counts an error answer (or a broken upstream body) of this tenant.
    pub fn error(&self, code: &'static str) {
        self.families
            .errors
            .get_or_create(&ErrorLabels {
                tenant: self.tenant.clone(),
                code,
            })
            .inc();
    }

    /// Counts an upstream body that broke off or stalled.
    pub fn upstream_body_error(&self, code: &'static str) {
        self.families
            .upstream_body_errors
            .get_or_create(&ErrorLabels {
                tenant: self.tenant.clone(),
                code,
            })
            .inc();
    }

    /// The handle in `cell`: this tenant's series of `family`, looked up the first time.
    fn handle<'a, M: Clone>(
        &self,
        cell: &'a OnceLock<M>,
        family: &Family<TenantLabel, M>,
    ) -> &'a M {
        cell.get_or_init(|| family.get_or_create_owned(&tenant(&self.tenant)))
    }
}

pub fn tenant(name: &str) -> TenantLabel {
    TenantLabel {
        tenant: name.to_string(),
    }
}

impl Metrics {
    /// Counts an agent connection closed or refused by the gateway: `head_timeout`,
    /// `response_unread`, `over_capacity` or `head_too_large`.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts one configuration reload attempt: `ok` or `error`.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// A registry with every family plus the collector reading `live` at scrape time.
    pub fn registry(&self, live: Arc<dyn Live>) -> Registry {
        let mut r = Registry::with_prefix("dataverse_gateway");
        r.register(
            "requests",
            "Agent requests by tenant, client, decision and status class",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from receiving an agent request to the end of its response body",
            self.request_duration.clone(),
        );
        r.register(
            "upstream_duration_seconds",
            "Time Dataverse took to answer with response headers",
            self.upstream_duration.clone(),
        );
        r.register(
            "in_flight_requests",
            "Agent requests being served now (response bodies included)",
            self.in_flight.clone(),
        );
        r.register(
            "rate_limited",
            "Requests the gateway refused with 429 (tenant or client rate or concurrency limit), by tenant and client",
            self.rate_limited.clone(),
        );
        r.register(
            "upstream_throttled",
            "Dataverse service-protection 429 responses",
            self.upstream_throttled.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reload attempts by result",
            self.reloads.clone(),
        );
        r.register(
            "audit_dropped",
            "Audit records dropped because the audit writer could not keep up",
            self.audit_dropped.clone(),
        );
        r.register(
            "errors",
            "Answers the gateway made itself, and upstream bodies that broke off, by tenant and error code",
            self.errors.clone(),
        );
        r.register(
            "upstream_body_errors",
            "Dataverse response bodies that ended early after the status was sent, by tenant and code (GatewayUpstreamTruncated, GatewayUpstreamStalled)",
            self.upstream_body_errors.clone(),
        );
        r.register(
            "agent_connections_closed",
            "Agent connections the gateway closed or refused: head_timeout, response_unread, over_capacity, head_too_large",
            self.connections_closed.clone(),
        );
        r.register(
            "mcp_tool_calls",
            "MCP tool calls by tenant, tool and result (ok, tool_error, invalid_params)",
            self.mcp_tool_calls.clone(),
        );
        r.register(
            "build_info",
            "Build information (label: version)",
            BuildInfo,
        );
        r.register_collector(Box::new(TokenCollector { live }));
        r
    }
}

/// `dataverse_gateway_build_info{version="..."} 1`.
#[derive(Debug)]
struct BuildInfo;

impl EncodeMetric for BuildInfo {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let labels = [("version", env!("CARGO_PKG_VERSION"))];
        ConstGauge::new(1i64).encode(encoder.encode_family(&labels)?)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// The text served at `/metrics`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut out, registry).is_err() {
        tracing::error!("cannot encode metrics");
    }
    out
}
