//! Figures read at scrape time: each tenant's token and metadata state from the current
//! snapshot, the agents' connections, and the buffered-body budget.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::{TenantLabel, TokenResultLabels, tenant};
use crate::proxy::gateway::Gateway;

/// Token figures per tenant, read from the current snapshot at scrape time.
pub(super) struct TokenCollector {
    pub(super) gateway: Arc<Gateway>,
}

impl std::fmt::Debug for TokenCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCollector")
    }
}

impl Collector for TokenCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.gateway.snapshot();
        let mut family = encoder.encode_descriptor(
            "token_requests",
            "Token requests to Entra ID by tenant and result (since the tenant's auth settings last changed)",
            None,
            MetricType::Counter,
        )?;
        for t in &snapshot.tenants {
            let (ok, failed) = t.token.outcomes();
            for (result, n) in [("ok", ok), ("error", failed)] {
                let labels = TokenResultLabels {
                    tenant: t.config.name.clone(),
                    result: result.into(),
                };
                family
                    .encode_family(&labels)?
                    .encode_counter::<TenantLabel, u64, f64>(&n, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "token_expiry_seconds",
            "Seconds until the tenant's cached token expires (0: no valid token)",
            None,
            MetricType::Gauge,
        )?;
        for t in &snapshot.tenants {
            let secs = t.token.expires_in().map_or(0, |d| d.as_secs() as i64);
            family
                .encode_family(&tenant(&t.config.name))?
                .encode_gauge(&secs)?;
        }
        let mut family = encoder.encode_descriptor(
            "metadata_loaded",
            "1 when the tenant's org metadata is loaded (requests that need it are denied otherwise)",
            None,
            MetricType::Gauge,
        )?;
        for t in &snapshot.tenants {
            let loaded = i64::from(t.metadata().is_some());
            family
                .encode_family(&tenant(&t.config.name))?
                .encode_gauge(&loaded)?;
        }
        let listener = &self.gateway.listener;
        for (name, help, value) in [
            (
                "agent_connections",
                "Agent connections open now",
                listener.open(),
            ),
            (
                "agent_connections_max",
                "The cap on agent connections (limits.max_connections)",
                listener.cap(),
            ),
        ] {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        let budget = &self.gateway.budget;
        for (name, help, value) in [
            (
                "buffered_request_bytes",
                "Request body bytes held in memory now",
                budget.used(),
            ),
            (
                "buffered_request_bytes_max",
                "The budget of request body bytes held in memory (limits.max_buffered_bytes)",
                budget.max(),
            ),
        ] {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        if let Some(store) = &snapshot.store {
            let up = i64::from(store.healthy());
            let mut g = encoder.encode_descriptor(
                "rate_limit_store_up",
                "1 when the shared rate-limit store (Redis) answered the last call",
                None,
                MetricType::Gauge,
            )?;
            g.encode_gauge(&up)?;
        }
        Ok(())
    }
}
