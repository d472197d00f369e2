//! The gateway's shared state: the current configuration snapshot and what lives with it.
//!
//! A [`Snapshot`] is immutable; a request loads the current one once and finishes under it even
//! if the configuration is swapped meanwhile ([`Gateway::swap`]). Each tenant's metadata lives
//! beside it and is filled from `metadata_file` at build time or fetched from the org in the
//! background; until it is loaded, requests that need it are denied (fail closed).

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::clock::Clock;
use crate::config::{Config, Tenant};
use crate::limit::TenantLimits;
use crate::metadata::Metadata;
use crate::route::Routes;
use crate::token::TokenSource;
use crate::token::registry::Registry;
use crate::upstream::{Upstream, UpstreamError};

pub struct TenantRuntime {
    pub config: Tenant,
    pub token: Arc<TokenSource>,
    pub limits: TenantLimits,
    pub metadata: ArcSwapOption<Metadata>,
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
}

pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    clock: Arc<dyn Clock>,
    /// Token sources shared by tenants with the same key, and across swaps.
    tokens: Registry,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("tenants.{tenant}.dataverse.metadata_file: {message}")]
    MetadataFile { tenant: String, message: String },
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Gateway>, BuildError> {
        let tokens = Registry::default();
        let snapshot = build(config, &clock, &tokens)?;
        let gateway = Arc::new(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            clock,
            tokens,
        });
        crate::metadata_loader::start(&gateway.snapshot());
        Ok(gateway)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the configuration; requests in flight keep the snapshot they started with.
    pub fn swap(&self, config: Config) -> Result<(), BuildError> {
        let snapshot = build(config, &self.clock, &self.tokens)?;
        let snapshot = Arc::new(snapshot);
        crate::metadata_loader::start(&snapshot);
        self.snapshot.store(snapshot);
        Ok(())
    }
}

fn build(
    config: Config,
    clock: &Arc<dyn Clock>,
    tokens: &Registry,
) -> Result<Snapshot, BuildError> {
    let upstream = Upstream::new(&config.upstream_tls, &config.timeouts)?;
    let mut tenants = Vec::new();
    for t in &config.tenants {
        let metadata = match &t.dataverse.metadata_file {
            Some(path) => Some(Arc::new(load_metadata_file(path).map_err(|message| {
                BuildError::MetadataFile {
                    tenant: t.name.clone(),
                    message,
                }
            })?)),
            None => None,
        };
        tenants.push(Arc::new(TenantRuntime {
            config: t.clone(),
            token: tokens.source(&t.auth, &upstream.entra, clock),
            limits: TenantLimits::new(&t.limits),
            metadata: ArcSwapOption::new(metadata),
        }));
    }
    let routes = Routes::new(&config.tenants);
    Ok(Snapshot {
        config: Arc::new(config),
        routes,
        tenants,
        upstream,
    })
}

/// Reads and parses a CSDL snapshot file.
pub fn load_metadata_file(path: &std::path::Path) -> Result<Metadata, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Metadata::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
