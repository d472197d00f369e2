//! Per-tenant traffic control: the request rate (GCRA), the cap on requests in flight to
//! Dataverse, and the cooldown after Dataverse throttles the tenant.
//!
//! All agents of a tenant share ONE Dataverse application user and so one service-protection
//! budget; these limits keep them inside it. Invariants:
//! - a request over the rate gets 429 with `Retry-After` in whole seconds (rounded up); every
//!   response of a rate-limited tenant carries `RateLimit-Policy` and `RateLimit`;
//! - at most `max_concurrent` requests are in flight to Dataverse; extra ones wait in a bounded
//!   line up to `queue_timeout`, then get 429;
//! - after Dataverse answers 429, no request of that tenant is sent until its `Retry-After`
//!   has passed (the gateway answers 429 itself); then half the concurrency for a window;
//! - with a shared store, the rate and the cooldown are decided in Redis for all replicas.
//!
//! Time comes from the injected clock, waits included.

pub mod cooldown;
pub mod rate;
pub mod redis;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::Clock;
use crate::config::Limits;
use crate::error::GatewayError;
use cooldown::{Cooldown, Phase, retry_after_secs};
use rate::{LocalRate, Rate, Verdict};
use redis::{OnError, RedisStore};

/// Dataverse fails beyond 52 concurrent requests per user; half of it while ramping up when
/// the tenant sets no cap of its own.
const DATAVERSE_CONCURRENCY: usize = 52;

pub struct TenantLimits {
    name: String,
    limits: Limits,
    rate: Option<(Rate, LocalRate)>,
    /// The `RateLimit-Policy` value of `rate`.
    policy: Option<HeaderValue>,
    slots: Option<Arc<Semaphore>>,
    waiting: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    cooldown: Mutex<Cooldown>,
    store: Option<Arc<RedisStore>>,
    clock: Arc<dyn Clock>,
}

/// Held while a request is in flight to Dataverse (until its response body ends).
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Rate headers to add to the response.
#[derive(Debug, Clone)]
pub struct RateState {
    policy: HeaderValue,
    remaining: u32,
    reset: Duration,
}

impl RateState {
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        rate::add_headers(headers, &self.policy, self.remaining, self.reset);
    }
}

fn limited(message: String, wait: Duration) -> GatewayError {
    GatewayError::RateLimited {
        message,
        retry_after_secs: retry_after_secs(wait),
    }
}

impl TenantLimits {
    pub fn new(
        name: &str,
        limits: &Limits,
        store: Option<Arc<RedisStore>>,
        clock: Arc<dyn Clock>,
    ) -> TenantLimits {
        let rate = limits.requests_per_second.map(|per_second| {
            let r = Rate {
                per_second,
                burst: limits.burst.unwrap_or(per_second),
            };
            (r, LocalRate::new(r, Arc::clone(&clock)))
        });
        TenantLimits {
            name: name.to_string(),
            limits: *limits,
            policy: rate.as_ref().and_then(|(r, _)| rate::policy_header(*r)),
            rate,
            slots: limits
                .max_concurrent
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            waiting: AtomicUsize::new(0),
            in_flight: Arc::default(),
            cooldown: Mutex::new(Cooldown::default()),
            store: store.filter(|_| limits.requests_per_second.is_some()),
            clock,
        }
    }

    /// Admits one request to the tenant's rate. `Ok(None)` when the tenant has no rate.
    pub async fn check_rate(&self) -> Result<Option<RateState>, GatewayError> {
        let Some((rate, local)) = &self.rate else {
            return Ok(None);
        };
        let verdict = match &self.store {
            Some(store) => match store.check(&self.name, *rate).await {
                Ok((verdict, cooldown)) => {
                    if !cooldown.is_zero() {
                        self.lock().throttled(self.clock.now(), cooldown);
                    }
                    verdict
                }
                Err(_) if store.on_error == OnError::FailOpen => local.check(),
                Err(e) => {
                    return Err(limited(
                        format!("tenant {}: {e}", self.name),
                        Duration::from_secs(1),
                    ));
                }
            },
            None => local.check(),
        };
        match verdict {
            Verdict::Admitted { remaining, reset } => {
                Ok(self.policy.clone().map(|policy| RateState {
                    policy,
                    remaining,
                    reset,
                }))
            }
            Verdict::Limited { retry_after } => Err(limited(
                format!(
                    "tenant {} is over its request rate; retry after {} s",
                    self.name,
                    retry_after_secs(retry_after)
                ),
                retry_after,
            )),
        }
    }

    /// The rate headers as they stand, for responses the limiter itself refused.
    pub fn rate_headers(&self, retry_after: Duration) -> Option<RateState> {
        let (rate, _) = self.rate.as_ref()?;
        Some(RateState {
            policy: self.policy.clone()?,
            remaining: 0,
            reset: retry_after.max(rate::refill(*rate, 0)),
        })
    }

    /// Waits out or refuses a Dataverse cooldown. GET/HEAD wait when `retry_throttled` allows.
    pub async fn pass_cooldown(&self, method: &Method) -> Result<(), GatewayError> {
        loop {
            let phase = self.lock().phase(self.clock.now());
            let Phase::Cooling { remaining } = phase else {
                return Ok(());
            };
            let idempotent = *method == Method::GET || *method == Method::HEAD;
            match self.limits.retry_throttled {
                Some(max_wait) if idempotent && remaining <= max_wait => {
                    self.clock.sleep_until(self.clock.now() + remaining).await;
                }
                _ => {
                    let msg = format!(
                        "Dataverse is throttling tenant {}; the gateway holds its requests for {} s",
                        self.name,
                        retry_after_secs(remaining)
                    );
                    return Err(limited(msg, remaining));
                }
            }
        }
    }

    /// Dataverse answered 429 with this `Retry-After`: cool down (here and, with a store, everywhere).
    pub async fn throttled(&self, retry_after: Duration) {
        self.lock().throttled(self.clock.now(), retry_after);
        tracing::warn!(tenant = %self.name, retry_after_s = retry_after.as_secs(), "Dataverse throttled the tenant; cooling down");
        if let Some(store) = &self.store {
            let _ = store.throttled(&self.name, retry_after).await;
        }
    }

    /// Whether a throttled request may be retried after waiting `retry_after`.
    pub fn may_retry(&self, method: &Method, retry_after: Duration) -> bool {
        let idempotent = *method == Method::GET || *method == Method::HEAD;
        idempotent
            && self
                .limits
                .retry_throttled
                .is_some_and(|max| retry_after <= max)
    }

    /// A slot among the tenant's in-flight requests, waiting (bounded) up to `queue_timeout`.
    pub async fn acquire(&self) -> Result<Slot, GatewayError> {
        let ramping = matches!(self.lock().phase(self.clock.now()), Phase::Ramping);
        let cap = match (&self.slots, ramping) {
            (Some(_), true) => Some((self.limits.max_concurrent.unwrap_or(1) as usize / 2).max(1)),
            (None, true) => Some(DATAVERSE_CONCURRENCY / 2),
            _ => None,
        };
        if cap.is_some_and(|c| self.in_flight.load(Ordering::Relaxed) >= c) {
            let msg = format!(
                "tenant {} is ramping up after Dataverse throttling; retry shortly",
                self.name
            );
            return Err(limited(msg, Duration::from_secs(1)));
        }
        let permit = match &self.slots {
            Some(sem) => Some(self.wait_for_slot(sem).await?),
            None => None,
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            _permit: permit,
            in_flight: Arc::clone(&self.in_flight),
        })
    }

    async fn wait_for_slot(
        &self,
        sem: &Arc<Semaphore>,
    ) -> Result<OwnedSemaphorePermit, GatewayError> {
        if let Ok(p) = Arc::clone(sem).try_acquire_owned() {
            return Ok(p);
        }
        let full = || {
            limited(
                format!(
                    "tenant {} has too many requests in flight; retry shortly",
                    self.name
                ),
                Duration::from_secs(1),
            )
        };
        let bound = self.limits.max_concurrent.unwrap_or(1) as usize * 4;
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= bound {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(full());
        }
        let deadline = self.clock.now() + self.limits.queue_timeout;
        let result = tokio::select! {
            p = Arc::clone(sem).acquire_owned() => p.map_err(|_| full()),
            () = self.clock.sleep_until(deadline) => Err(full()),
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cooldown> {
        self.cooldown.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Retry-After` of a Dataverse 429 (integer seconds; 1 s when absent or unreadable).
pub fn upstream_retry_after(headers: &HeaderMap) -> Duration {
    let secs = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    Duration::from_secs(secs.unwrap_or(1).clamp(1, 3600))
}
