//! The gateway's shared state: the current configuration snapshot and what lives with it.
//!
//! A [`Snapshot`] is immutable; a request loads the current one once and finishes under it even
//! if the configuration is swapped meanwhile ([`Gateway::swap`]).

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::config::{Config, Tenant};
use crate::limit::TenantLimits;
use crate::route::Routes;
use crate::token::TokenSource;
use crate::upstream::{Upstream, UpstreamError};

pub struct TenantRuntime {
    pub config: Tenant,
    pub token: Arc<TokenSource>,
    pub limits: TenantLimits,
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
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Gateway>, UpstreamError> {
        let snapshot = build(config, &clock)?;
        Ok(Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            clock,
        }))
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the configuration; requests in flight keep the snapshot they started with.
    pub fn swap(&self, config: Config) -> Result<(), UpstreamError> {
        let snapshot = build(config, &self.clock)?;
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }
}

fn build(config: Config, clock: &Arc<dyn Clock>) -> Result<Snapshot, UpstreamError> {
    let upstream = Upstream::new(&config.upstream_tls, &config.timeouts)?;
    let tenants = config
        .tenants
        .iter()
        .map(|t| TenantRuntime {
            config: t.clone(),
            token: TokenSource::new(t.auth.clone(), upstream.entra.clone(), Arc::clone(clock)),
            limits: TenantLimits::new(&t.limits),
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
