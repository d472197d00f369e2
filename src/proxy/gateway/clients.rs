//! What a snapshot keeps for the named clients: the agent token validator (kept across reloads
//! while `agent_auth` and the upstream client are unchanged, so its key set and validated tokens
//! survive) and each client's own limiter per tenant (kept while its limits are unchanged; a
//! changed one shares the old one's count of requests in flight).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{Config, Tenant};
use crate::identity::agent_token::AgentTokens;
use crate::limit::TenantLimits;
use crate::limit::redis::RedisStore;
use crate::proxy::upstream::Upstream;

use super::{Snapshot, TenantRuntime};

/// The agent token validator for `config`, reusing `previous`'s when nothing it depends on changed.
pub fn agent_tokens(
    config: &Config,
    upstream: &Upstream,
    clock: &Arc<dyn Clock>,
    previous: Option<&Snapshot>,
    same_upstream: bool,
) -> Option<Arc<AgentTokens>> {
    let auth = config.agent_auth.as_ref()?;
    if let Some(p) = previous.and_then(|p| p.agents.as_ref())
        && same_upstream
        && p.config() == auth
    {
        return Some(Arc::clone(p));
    }
    Some(Arc::new(AgentTokens::new(
        auth,
        upstream.entra.clone(),
        config.timeouts.token_request,
        Arc::clone(clock),
    )))
}

/// The limiters of the clients with `limits` that may use `tenant`, by client name.
pub fn limiters(
    config: &Config,
    tenant: &Tenant,
    store: Option<&Arc<RedisStore>>,
    clock: &Arc<dyn Clock>,
    before: Option<&TenantRuntime>,
    same_store: bool,
) -> BTreeMap<String, Arc<TenantLimits>> {
    let mut out = BTreeMap::new();
    for c in &config.clients {
        let Some(limits) = c
            .limits
            .as_ref()
            .filter(|_| c.tenants.contains(&tenant.name))
        else {
            continue;
        };
        let old = before.and_then(|b| b.clients.get(&c.name));
        let limiter = match old {
            Some(o) if o.limits() == limits && same_store => Arc::clone(o),
            _ => Arc::new(TenantLimits::for_client(
                &tenant.name,
                &c.name,
                limits,
                store.cloned(),
                Arc::clone(clock),
                old.map(|o| &**o),
            )),
        };
        out.insert(c.name.clone(), limiter);
    }
    out
}

/// The request series of every configured client on `tenant` (metrics' `client` label).
pub fn series(
    config: &Config,
    metrics: &crate::telemetry::metrics::Metrics,
    tenant: &str,
) -> BTreeMap<String, crate::telemetry::metrics::TenantSeries> {
    config
        .clients
        .iter()
        .map(|c| {
            let s = crate::telemetry::metrics::TenantSeries::for_client(metrics, tenant, &c.name);
            (c.name.clone(), s)
        })
        .collect()
}
