//! Per-tenant traffic control: the request rate (GCRA), the cap on requests in flight to
//! Dataverse, and the cooldown after Dataverse throttles the tenant.
//!
//! All agents of a tenant share ONE Dataverse application user and so one service-protection
//! budget; these limits keep them inside it. Invariants:
//! - a request over the rate gets 429 with `Retry-After` in whole seconds (rounded up); every
//!   response of a rate-limited tenant carries `RateLimit-Policy` and `RateLimit`;
//! - at most `max_concurrent` (default 52, Dataverse's per-user limit) requests are in flight to
//!   Dataverse; extra ones wait in a bounded line ([`MIN_LINE`], or 4x the cap) up to
//!   `queue_timeout`, then get 429. The count
//!   of requests in flight lives in a [`Pool`] that a limiter rebuilt by a reload shares with the
//!   one it replaces, so a reload that changes `limits` never lets more than the new cap through;
//! - after Dataverse answers 429, no request of that tenant is sent until its `Retry-After`
//!   has passed (the gateway answers 429 itself); then half the concurrency for a window;
//! - with a shared store, the rate and the cooldown are decided in Redis for all replicas.
//!
//! Time comes from the injected clock, waits included.

pub mod budget;
pub mod cooldown;
pub mod rate;
pub mod redis;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Limits;
use crate::error::GatewayError;
use cooldown::{Cooldown, Phase, retry_after_secs};
use rate::{LocalRate, Rate, Verdict};
use redis::{OnError, RedisStore};

/// The shortest line of requests waiting for a slot (it is 4x the cap when that is longer):
/// a waiting request costs a small future, and the connection cap bounds them all.
pub const MIN_LINE: usize = 1024;

/// The requests of one tenant in flight to Dataverse, shared across reloads.
#[derive(Default)]
pub struct Pool {
    in_flight: AtomicUsize,
    /// Signalled when a slot is given back.
    freed: Notify,
}

impl Pool {
    /// Takes a slot when fewer than `cap` are taken.
    fn try_take(&self, cap: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

pub struct TenantLimits {
    /// The tenant's name (its Redis keys), or `{tenant}:client:{client}` for a client's limiter.
    name: String,
    /// How messages name what is limited: `tenant contoso`, `client sales-agent on tenant contoso`.
    subject: String,
    /// The `RateLimit` policy name: `tenant` or `client`.
    label: &'static str,
    limits: Limits,
    rate: Option<(Rate, LocalRate)>,
    /// The `RateLimit-Policy` value of `rate`.
    policy: Option<HeaderValue>,
    /// The cap on requests in flight (`max_concurrent`, default 52).
    cap: usize,
    waiting: AtomicUsize,
    pool: Arc<Pool>,
    cooldown: Mutex<Cooldown>,
    store: Option<Arc<RedisStore>>,
    clock: Arc<dyn Clock>,
}

/// Held while a request is in flight to Dataverse (until its response body ends).
pub struct Slot {
    pool: Arc<Pool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.pool.freed.notify_one();
    }
}

/// Rate headers to add to the response.
#[derive(Debug, Clone)]
pub struct RateState {
    label: &'static str,
    policy: HeaderValue,
    remaining: u32,
    reset: Duration,
}

impl RateState {
    /// Requests left now.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    pub fn add_headers(&self, headers: &mut HeaderMap) {
        rate::add_headers(
            headers,
            self.label,
            &self.policy,
            self.remaining,
            self.reset,
        );
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
        Self::carrying(name, limits, store, clock, None)
    }

    /// A limiter for new `limits` that replaces `previous`: the requests `previous` let in
    /// count against the new cap, and its cooldown carries over.
    pub fn carrying(
        name: &str,
        limits: &Limits,
        store: Option<Arc<RedisStore>>,
        clock: Arc<dyn Clock>,
        previous: Option<&TenantLimits>,
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
            subject: format!("tenant {name}"),
            label: "tenant",
            limits: *limits,
            policy: rate
                .as_ref()
                .and_then(|(r, _)| rate::policy_header("tenant", *r)),
            rate,
            cap: limits.concurrency() as usize,
            waiting: AtomicUsize::new(0),
            pool: previous.map_or_else(Arc::default, |p| Arc::clone(&p.pool)),
            cooldown: Mutex::new(previous.map_or_else(Cooldown::default, |p| *p.lock())),
            store: store.filter(|_| limits.requests_per_second.is_some()),
            clock,
        }
    }

    /// A limiter for one client's own `limits` on `tenant` (its rate shared through `store` under
    /// its own keys, its own in-flight cap); it never cools down on its own.
    pub fn for_client(
        tenant: &str,
        client: &str,
        limits: &Limits,
        store: Option<Arc<RedisStore>>,
        clock: Arc<dyn Clock>,
        previous: Option<&TenantLimits>,
    ) -> TenantLimits {
        let mut l = Self::carrying(
            &format!("{tenant}:client:{client}"),
            limits,
            store,
            clock,
            previous,
        );
        l.subject = format!("client {client} on tenant {tenant}");
        l.label = "client";
        l.policy = l
            .rate
            .as_ref()
            .and_then(|(r, _)| rate::policy_header("client", *r));
        l
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether this limiter caps requests in flight itself (`max_concurrent` is set).
    pub fn caps_concurrency(&self) -> bool {
        self.limits.max_concurrent.is_some()
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
                        format!("{}: {e}", self.subject),
                        Duration::from_secs(1),
                    ));
                }
            },
            None => local.check(),
        };
        match verdict {
            Verdict::Admitted { remaining, reset } => {
                Ok(self.policy.clone().map(|policy| RateState {
                    label: self.label,
                    policy,
                    remaining,
                    reset,
                }))
            }
            Verdict::Limited { retry_after } => Err(limited(
                format!(
                    "{} is over its request rate; retry after {} s",
                    self.subject,
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
            label: self.label,
            policy: self.policy.clone()?,
            remaining: 0,
            reset: retry_after.max(rate::refill(*rate, 0)),
        })
    }

    /// Waits out or refuses a Dataverse cooldown. GET/HEAD wait when `retry_throttled` allows.
    pub async fn pass_cooldown(&self, method: &Method) -> Result<(), GatewayError> {
        loop {
            let phase = self.lock().current(|| self.clock.now());
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

    /// Requests of this tenant in flight to Dataverse now.
    pub fn in_flight(&self) -> usize {
        self.pool.in_flight()
    }

    /// A slot among the tenant's in-flight requests, waiting (bounded) up to `queue_timeout`.
    pub async fn acquire(&self) -> Result<Slot, GatewayError> {
        let ramping = matches!(self.lock().current(|| self.clock.now()), Phase::Ramping);
        if ramping && self.pool.in_flight() >= (self.cap / 2).max(1) {
            let msg = format!(
                "{} is ramping up after Dataverse throttling; retry shortly",
                self.subject
            );
            return Err(limited(msg, Duration::from_secs(1)));
        }
        if !self.pool.try_take(self.cap) {
            self.wait_for_slot().await?;
        }
        Ok(Slot {
            pool: Arc::clone(&self.pool),
        })
    }

    /// Waits in the bounded line until a slot is taken or `queue_timeout` has passed.
    async fn wait_for_slot(&self) -> Result<(), GatewayError> {
        let full = || {
            limited(
                format!(
                    "{} has too many requests in flight; retry shortly",
                    self.subject
                ),
                Duration::from_secs(1),
            )
        };
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= (self.cap * 4).max(MIN_LINE) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(full());
        }
        let deadline = self
            .clock
            .sleep_until(self.clock.now() + self.limits.queue_timeout);
        tokio::pin!(deadline);
        let result = loop {
            let freed = self.pool.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.pool.try_take(self.cap) {
                break Ok(());
            }
            tokio::select! {
                () = &mut freed => {}
                () = &mut deadline => break Err(full()),
            }
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

#[cfg(test)]
mod tests;
