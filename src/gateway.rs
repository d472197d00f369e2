//! The gateway's shared state: the current configuration snapshot and what lives with it.
//!
//! A [`Snapshot`] is immutable; a request loads the current one once and finishes under it even
//! if the configuration is swapped meanwhile ([`Gateway::swap`]). A swap keeps the token source
//! of every tenant whose `auth` (and the upstream settings) did not change, and the limiter of
//! every tenant whose `limits` did not change, so a reload never drops a cache or resets a rate.
//! [`Metrics`] and the audit sink belong to the process, not to a snapshot.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::AuditSink;
use crate::clock::Clock;
use crate::config::{Config, Tenant};
use crate::limit::TenantLimits;
use crate::metrics::Metrics;
use crate::route::Routes;
use crate::token::TokenSource;
use crate::upstream::{Upstream, UpstreamError};

pub struct TenantRuntime {
    pub config: Tenant,
    pub token: Arc<TokenSource>,
    pub limits: Arc<TenantLimits>,
}

pub struct Snapshot {
    pub config: Arc<Config>,
    pub routes: Routes,
    pub tenants: Vec<TenantRuntime>,
    pub upstream: Upstream,
}

pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    audit: std::sync::OnceLock<AuditSink>,
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Gateway>, UpstreamError> {
        let snapshot = build(config, &clock, None)?;
        Ok(Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            clock,
            metrics: Metrics::default(),
            audit: std::sync::OnceLock::new(),
        }))
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
    pub fn swap(&self, config: Config) -> Result<(), UpstreamError> {
        let previous = self.snapshot.load_full();
        let snapshot = build(config, &self.clock, Some(&previous))?;
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }
}

fn build(
    config: Config,
    clock: &Arc<dyn Clock>,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, UpstreamError> {
    let same_upstream = previous.filter(|p| {
        p.config.upstream_tls == config.upstream_tls && p.config.timeouts == config.timeouts
    });
    let upstream = match same_upstream {
        Some(p) => p.upstream.clone(),
        None => Upstream::new(&config.upstream_tls, &config.timeouts)?,
    };
    let tenants = config
        .tenants
        .iter()
        .map(|t| {
            let before = previous.and_then(|p| p.tenants.iter().find(|o| o.config.name == t.name));
            let token = match before {
                Some(o) if same_upstream.is_some() && o.config.auth == t.auth => {
                    Arc::clone(&o.token)
                }
                _ => TokenSource::new(t.auth.clone(), upstream.entra.clone(), Arc::clone(clock)),
            };
            let limits = match before {
                Some(o) if o.config.limits == t.limits => Arc::clone(&o.limits),
                _ => Arc::new(TenantLimits::new(&t.limits)),
            };
            TenantRuntime {
                config: t.clone(),
                token,
                limits,
            }
        })
        .collect();
    let routes = Routes::new(&config.tenants);
    Ok(Snapshot {
        config: Arc::new(config),
        routes,
        tenants,
        upstream,
    })
}
