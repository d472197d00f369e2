//! The gateway's shared state: the current configuration snapshot and what lives with it.
//!
//! A [`Snapshot`] is immutable; a request loads the current one once and finishes under it even
//! if the configuration is swapped meanwhile ([`Gateway::swap`]). A swap keeps the token source
//! of every tenant whose `auth` (and the upstream settings) did not change, the limiter of every
//! tenant whose `limits` did not change, and the metadata of every tenant whose `dataverse`
//! settings did not change, so a reload never drops a cache or resets a rate.
//! Each tenant's metadata is filled from `metadata_file` at build time or fetched from the org
//! in the background; until it is loaded, requests that need it are denied (fail closed).
//! A tenant whose `limits` changed gets a new limiter that shares the old one's count of
//! requests in flight (and its cooldown), so the new cap holds across the reload.
//! [`Metrics`], the audit sink, the buffered-body [`Budget`] and the agents' [`Listener`] state
//! belong to the process, not to a snapshot.

pub mod clients;
pub mod listener;
pub mod metadata_loader;

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::clock::Clock;
use crate::config::{Config, Tenant};
use crate::identity::token::TokenSource;
use crate::identity::token::registry::Registry;
use crate::limit::TenantLimits;
use crate::limit::budget::Budget;
use crate::limit::redis::{OnError, RedisStore};
use crate::policy::metadata::Metadata;
use crate::proxy::route::Routes;
use crate::proxy::upstream::{Upstream, UpstreamError};
use crate::telemetry::audit::AuditSink;
use crate::telemetry::metrics::Metrics;
pub use listener::{Listener, file_limit};

pub struct TenantRuntime {
    pub config: Tenant,
    /// The connections to the tenant's org.
    pub org: Arc<crate::proxy::org::OrgClient>,
    pub token: Arc<TokenSource>,
    pub limits: Arc<TenantLimits>,
    /// The own limiters of the clients with `limits` that may use this tenant, by client name.
    pub clients: std::collections::BTreeMap<String, Arc<TenantLimits>>,
    pub metadata: ArcSwapOption<Metadata>,
    /// The `Authorization` header for the current token.
    pub bearer: crate::policy::headers::Bearer,
    /// This tenant's request metrics.
    pub series: crate::telemetry::metrics::TenantSeries,
    /// The request series of each configured client on this tenant (`client` label).
    pub client_series: std::collections::BTreeMap<String, crate::telemetry::metrics::TenantSeries>,
    /// The tenant's URLs as seen through the gateway origin agents last used.
    pub origin: ArcSwapOption<TenantOrigin>,
}

impl TenantRuntime {
    pub fn metadata(&self) -> Option<Arc<Metadata>> {
        self.metadata.load_full()
    }
}

pub struct Snapshot {
    pub config: Arc<Config>,
    pub routes: Routes,
    pub tenants: Vec<Arc<TenantRuntime>>,
    pub upstream: Upstream,
    /// The shared rate-limit store, when configured.
    pub store: Option<Arc<RedisStore>>,
    /// Validates agents' Entra ID tokens (`agent_auth:`).
    pub agents: Option<Arc<crate::identity::agent_token::AgentTokens>>,
}

/// A tenant's URLs as agents see them through one gateway origin: built on the first request
/// from that origin and reused while agents keep using it (per snapshot: a reload starts over).
pub struct TenantOrigin {
    /// The Host it was built for.
    pub host: Option<String>,
    /// `gateway[0]` is `{origin}/{tenant}`, `gateway[1]` the bare origin.
    pub urls: crate::policy::classify::Urls,
    /// JSON rewriting from the org to `gateway[0]` and to `gateway[1]`.
    pub json: [Arc<crate::proxy::rewrite::JsonTarget>; 2],
}

pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// The series of requests refused before a tenant was known (tenant label `-`).
    pub unrouted: crate::telemetry::metrics::TenantSeries,
    audit: std::sync::OnceLock<AuditSink>,
    /// Token sources shared by tenants with the same key, and across swaps.
    tokens: Registry,
    /// Request bodies held in memory, all requests together (`limits.max_buffered_bytes`).
    pub budget: Arc<Budget>,
    /// The agents' listener: open connections, the cap, whether it can accept.
    pub listener: Listener,
}

/// The figures `/metrics` reads at scrape time, from the current snapshot.
impl crate::telemetry::metrics::Live for Gateway {
    fn figures(&self) -> crate::telemetry::metrics::Figures {
        let snapshot = self.snapshot();
        let tenants = snapshot
            .tenants
            .iter()
            .map(|t| crate::telemetry::metrics::TenantFigures {
                name: t.config.name.clone(),
                tokens: t.token.outcomes(),
                token_expires_in: t.token.expires_in(),
                metadata_loaded: t.metadata().is_some(),
                certificate_expires_in: t.token.certificate_seconds_left(),
                key_vault_up: t.token.vault().map(|v| v.status().error.is_none()),
            })
            .collect();
        crate::telemetry::metrics::Figures {
            tenants,
            connections_open: self.listener.open(),
            connections_cap: self.listener.cap(),
            buffered_used: self.budget.used(),
            buffered_max: self.budget.max(),
            store_up: snapshot.store.as_ref().map(|s| s.healthy()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("tenants.{tenant}.dataverse.metadata_file: {message}")]
    MetadataFile { tenant: String, message: String },
    #[error("rate_limit_store.redis.url: {0}")]
    Store(String),
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Gateway>, BuildError> {
        let tokens = Registry::default();
        let metrics = Metrics::default();
        let budget = Budget::new(config.limits.max_buffered_bytes);
        let listener = Listener::new(config.limits.max_connections);
        let snapshot = build(config, &clock, None, &tokens, &metrics)?;
        let gateway = Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            clock,
            tokens,
            unrouted: crate::telemetry::metrics::TenantSeries::new(
                &metrics,
                crate::telemetry::metrics::NO_TENANT,
            ),
            metrics,
            audit: std::sync::OnceLock::new(),
            budget,
            listener,
        });
        metadata_loader::start(&gateway.snapshot());
        Ok(gateway)
    }

    /// Starts writing audit records to `sink` (once; later calls are ignored).
    pub fn set_audit(&self, sink: AuditSink) {
        let _ = self.audit.set(sink);
    }

    pub fn audit(&self) -> Option<&AuditSink> {
        self.audit.get()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the configuration; requests in flight keep the snapshot they started with.
    pub fn swap(&self, config: Config) -> Result<(), BuildError> {
        let previous = self.snapshot.load_full();
        let snapshot = Arc::new(build(
            config,
            &self.clock,
            Some(&previous),
            &self.tokens,
            &self.metrics,
        )?);
        metadata_loader::start(&snapshot);
        self.budget
            .set_max(snapshot.config.limits.max_buffered_bytes);
        self.listener
            .set_cap(snapshot.config.limits.max_connections);
        self.snapshot.store(snapshot);
        Ok(())
    }
}

fn build(
    config: Config,
    clock: &Arc<dyn Clock>,
    previous: Option<&Snapshot>,
    tokens: &Registry,
    metrics: &Metrics,
) -> Result<Snapshot, BuildError> {
    // The timeouts the connections and the token client are built with.
    let built_with = |t: &crate::config::Timeouts| (t.connect, t.idle, t.token_request);
    let same_upstream = previous.filter(|p| {
        p.config.upstream_tls == config.upstream_tls
            && built_with(&p.config.timeouts) == built_with(&config.timeouts)
    });
    let upstream = match same_upstream {
        Some(p) => p.upstream.clone(),
        None => Upstream::new(&config.upstream_tls, &config.timeouts)?,
    };
    let agents =
        clients::agent_tokens(&config, &upstream, clock, previous, same_upstream.is_some());
    let store = match (&config.rate_limit_store, previous) {
        (None, _) => None,
        (Some(c), Some(p)) if p.config.rate_limit_store.as_ref() == Some(c) => p.store.clone(),
        (Some(c), _) => {
            let on_error = if c.fail_open {
                OnError::FailOpen
            } else {
                OnError::FailClosed
            };
            Some(Arc::new(
                RedisStore::new(&c.url, &c.key_prefix, on_error).map_err(BuildError::Store)?,
            ))
        }
    };
    let same_store = previous.is_some_and(|p| p.config.rate_limit_store == config.rate_limit_store);
    let mut tenants = Vec::new();
    for t in &config.tenants {
        let before = previous.and_then(|p| p.tenants.iter().find(|o| o.config.name == t.name));
        // One token source per (authority, tenant, client, scope, credential), shared by
        // tenants and kept across reloads while any snapshot uses it.
        let token = tokens.source(&t.auth, &upstream.entra, clock);
        let limits = match before {
            Some(o) if o.config.limits == t.limits && same_store => Arc::clone(&o.limits),
            _ => Arc::new(TenantLimits::carrying(
                &t.name,
                &t.limits,
                store.clone(),
                Arc::clone(clock),
                before.map(|o| &*o.limits),
            )),
        };
        let metadata = match (&t.dataverse.metadata_file, before) {
            (Some(path), _) => Some(Arc::new(load_metadata_file(path).map_err(|message| {
                BuildError::MetadataFile {
                    tenant: t.name.clone(),
                    message,
                }
            })?)),
            (None, Some(o)) if o.config.dataverse == t.dataverse => o.metadata(),
            (None, _) => None,
        };
        if let Some(m) = &metadata {
            warn_money_without_currency(&t.name, &t.policy, m);
        }
        let org = upstream.org(&t.dataverse.url)?;
        let client_limits = clients::limiters(
            &config,
            t,
            store.as_ref(),
            clock,
            before.map(|b| &**b),
            same_store,
        );
        tenants.push(Arc::new(TenantRuntime {
            config: t.clone(),
            org,
            token,
            limits,
            clients: client_limits,
            metadata: ArcSwapOption::new(metadata),
            bearer: Default::default(),
            series: crate::telemetry::metrics::TenantSeries::new(metrics, &t.name),
            client_series: clients::series(&config, metrics, &t.name),
            origin: ArcSwapOption::empty(),
        }));
    }
    let orgs: Vec<&str> = config
        .tenants
        .iter()
        .map(|t| t.dataverse.url.as_str())
        .collect();
    upstream.retain_orgs(&orgs);
    let routes = Routes::new(&config.tenants);
    Ok(Snapshot {
        config: Arc::new(config),
        routes,
        tenants,
        upstream,
        store,
        agents,
    })
}

/// Reads and parses a CSDL snapshot file.
/// Logs each column list of `policy` that names a money column without its currency lookup
/// ([`crate::policy::inspect::money_without_currency`]): reads of that column are denied.
fn warn_money_without_currency(tenant: &str, policy: &crate::config::Policy, meta: &Metadata) {
    for (set, money) in crate::policy::inspect::money_without_currency(policy, meta) {
        tracing::warn!(
            tenant,
            table = set,
            column = money,
            "the column list names a money column without `_transactioncurrencyid_value`, which Dataverse returns with it: reads of the column are denied until the list holds the lookup"
        );
    }
}

pub fn load_metadata_file(path: &std::path::Path) -> Result<Metadata, String> {
    let bytes = read_paced(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Metadata::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The whole file, read a slice at a time with a [`crate::pace::step`] between: a single read
/// of tens of megabytes holds the CPU in the kernel for tens of milliseconds.
fn read_paced(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const SLICE: u64 = 32 << 10;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    while (&mut file).take(SLICE).read_to_end(&mut bytes)? > 0 {
        crate::pace::step();
    }
    Ok(bytes)
}
