//! Figures read at scrape time: each tenant's token and metadata state from the current
//! snapshot, the agents' connections, and the buffered-body budget.
//!
//! The state lives in the proxy layer above; it hands this collector a [`Live`] source (the
//! gateway implements it), so telemetry never reaches up into the proxy.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::{TenantLabel, TokenResultLabels, tenant};

/// Where the scrape-time figures come from: read once per scrape, from one config snapshot.
pub trait Live: Send + Sync + 'static {
    fn figures(&self) -> Figures;
}

/// One tenant's scrape-time figures.
#[derive(Debug, Clone, Default)]
pub struct TenantFigures {
    pub name: String,
    /// Token requests to Entra ID that succeeded and failed (since the auth settings changed).
    pub tokens: (u64, u64),
    /// Time until the cached token expires; `None` when no valid token is cached.
    pub token_expires_in: Option<std::time::Duration>,
    pub metadata_loaded: bool,
    /// Seconds until the certificate credential's `notAfter` (files or Key Vault); `None` for
    /// other credentials or before the certificate was read.
    pub certificate_expires_in: Option<i64>,
    /// For a credential in Key Vault: whether its last read (or signature) succeeded.
    pub key_vault_up: Option<bool>,
}

/// Everything the collector reports, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub tenants: Vec<TenantFigures>,
    pub connections_open: usize,
    pub connections_cap: usize,
    pub buffered_used: u64,
    pub buffered_max: u64,
    /// Whether the shared rate-limit store answered its last call; `None` without a store.
    pub store_up: Option<bool>,
}

/// Token figures per tenant, read from a [`Live`] source at scrape time.
pub(super) struct TokenCollector {
    pub(super) live: Arc<dyn Live>,
}

impl std::fmt::Debug for TokenCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCollector")
    }
}

impl Collector for TokenCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = self.live.figures();
        let mut family = encoder.encode_descriptor(
            "token_requests",
            "Token requests to Entra ID by tenant and result (since the tenant's auth settings last changed)",
            None,
            MetricType::Counter,
        )?;
        for t in &live.tenants {
            let (ok, failed) = t.tokens;
            for (result, n) in [("ok", ok), ("error", failed)] {
                let labels = TokenResultLabels {
                    tenant: t.name.clone(),
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
        for t in &live.tenants {
            let secs = t.token_expires_in.map_or(0, |d| d.as_secs() as i64);
            family
                .encode_family(&tenant(&t.name))?
                .encode_gauge(&secs)?;
        }
        let mut family = encoder.encode_descriptor(
            "metadata_loaded",
            "1 when the tenant's org metadata is loaded (requests that need it are denied otherwise)",
            None,
            MetricType::Gauge,
        )?;
        for t in &live.tenants {
            let loaded = i64::from(t.metadata_loaded);
            family
                .encode_family(&tenant(&t.name))?
                .encode_gauge(&loaded)?;
        }
        // Only credentials that have them: no empty families.
        let certificates: Vec<(&str, i64)> = live
            .tenants
            .iter()
            .filter_map(|t| Some((t.name.as_str(), t.certificate_expires_in?)))
            .collect();
        let vaults: Vec<(&str, i64)> = live
            .tenants
            .iter()
            .filter_map(|t| Some((t.name.as_str(), i64::from(t.key_vault_up?))))
            .collect();
        for (name, help, values) in [
            (
                "certificate_expiry_seconds",
                "Seconds until the tenant's certificate credential expires (negative once expired)",
                certificates,
            ),
            (
                "key_vault_up",
                "1 when the last Key Vault read or signature for the tenant's credential succeeded",
                vaults,
            ),
        ] {
            if values.is_empty() {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (t, value) in values {
                family.encode_family(&tenant(t))?.encode_gauge(&value)?;
            }
        }
        for (name, help, value) in [
            (
                "agent_connections",
                "Agent connections open now",
                live.connections_open,
            ),
            (
                "agent_connections_max",
                "The cap on agent connections (limits.max_connections)",
                live.connections_cap,
            ),
        ] {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        for (name, help, value) in [
            (
                "buffered_request_bytes",
                "Request body bytes held in memory now",
                live.buffered_used,
            ),
            (
                "buffered_request_bytes_max",
                "The budget of request body bytes held in memory (limits.max_buffered_bytes)",
                live.buffered_max,
            ),
        ] {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        if let Some(up) = live.store_up {
            let up = i64::from(up);
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
