//! Per-tenant traffic limits: a GCRA rate (governor) and a cap on in-flight requests.
//!
//! A request over the rate gets 429 with the whole seconds until it would conform (rounded up,
//! at least 1). A request over the concurrency cap waits in line up to `queue_timeout`, then
//! gets 429.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock as _, DefaultClock};
use governor::{Quota, RateLimiter, state::InMemoryState, state::NotKeyed};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;
use crate::error::GatewayError;

pub struct TenantLimits {
    rate: Option<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
    concurrency: Option<Arc<Semaphore>>,
    limits: Limits,
}

impl TenantLimits {
    pub fn new(limits: &Limits) -> TenantLimits {
        let rate = limits
            .requests_per_second
            .and_then(NonZeroU32::new)
            .map(|rps| {
                let burst = limits.burst.and_then(NonZeroU32::new).unwrap_or(rps);
                RateLimiter::direct(Quota::per_second(rps).allow_burst(burst))
            });
        let concurrency = limits
            .max_concurrent
            .map(|n| Arc::new(Semaphore::new(n as usize)));
        TenantLimits {
            rate,
            concurrency,
            limits: *limits,
        }
    }

    /// Admits one request to the rate, or says how long to wait.
    pub fn check_rate(&self, tenant: &str) -> Result<(), GatewayError> {
        let Some(rate) = &self.rate else {
            return Ok(());
        };
        rate.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            GatewayError::RateLimited {
                message: format!(
                    "tenant {tenant} is over its request rate; retry after {} s",
                    secs.max(1)
                ),
                retry_after_secs: secs.max(1),
            }
        })
    }

    /// A slot among the tenant's in-flight requests, waiting up to `queue_timeout`.
    pub async fn acquire(
        &self,
        tenant: &str,
    ) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
        let Some(sem) = &self.concurrency else {
            return Ok(None);
        };
        let wait = self.limits.queue_timeout;
        match tokio::time::timeout(wait, Arc::clone(sem).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(GatewayError::RateLimited {
                message: format!("tenant {tenant} has too many requests in flight; retry shortly"),
                retry_after_secs: 1,
            }),
        }
    }
}
