//! Per-tenant access tokens: cache, single flight, proactive refresh.
//!
//! Invariants:
//! - at most one token request per tenant is in flight: N concurrent callers on a cold cache
//!   cause exactly one request;
//! - a token is never handed out within [`EXPIRY_MARGIN`] of its expiry;
//! - from the refresh point (`refresh_in` when Entra gives it, else 5 minutes before expiry)
//!   callers get the still-valid token while ONE background refresh runs;
//! - after a failed request, no new request is made for [`FAILURE_BACKOFF`] (or the
//!   `Retry-After` Entra asked for, if longer); callers get the failure meanwhile;
//! - "now" comes from the injected [`Clock`].
//!
//! The cache policy ([`freshness`], [`refresh_at`]) is pure and unit-tested; the shell around it
//! is async.

pub mod aadsts;
pub mod entra;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::{Auth, Credential};
use crate::secret::Secret;
pub use entra::EntraError;

/// A token this close to expiry is not used.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Refresh this long before expiry at the latest.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Minimum time between failed attempts.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Cached {
    token: Secret,
    expires_at: Instant,
    refresh_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Valid, but due for refresh.
    Stale,
    Expired,
}

/// Pure cache policy.
pub fn freshness(now: Instant, expires_at: Instant, refresh_at: Instant) -> Freshness {
    if now + EXPIRY_MARGIN >= expires_at {
        Freshness::Expired
    } else if now >= refresh_at {
        Freshness::Stale
    } else {
        Freshness::Fresh
    }
}

/// When to refresh a token issued at `issued` with the given lifetime.
pub fn refresh_at(issued: Instant, lifetime: Duration, refresh_in: Option<Duration>) -> Instant {
    let latest = if lifetime > REFRESH_BEFORE_EXPIRY * 2 {
        lifetime - REFRESH_BEFORE_EXPIRY
    } else {
        lifetime / 2
    };
    issued + refresh_in.map_or(latest, |r| r.min(latest))
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    failure: Option<(Instant, Duration, EntraError)>,
}

/// The token source of one tenant.
pub struct TokenSource {
    auth: Auth,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    flight: tokio::sync::Mutex<()>,
    requests: AtomicU64,
    /// Finished token requests by outcome (for metrics).
    outcomes: [AtomicU64; 2],
}

impl TokenSource {
    pub fn new(auth: Auth, http: reqwest::Client, clock: Arc<dyn Clock>) -> Arc<TokenSource> {
        Arc::new(TokenSource {
            auth,
            http,
            clock,
            state: Mutex::new(State::default()),
            flight: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
            outcomes: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// Finished token requests: (succeeded, failed).
    pub fn outcomes(&self) -> (u64, u64) {
        let [ok, failed] = &self.outcomes;
        (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
    }

    /// Time until the cached token expires; `None` when there is no usable token.
    pub fn expires_in(&self) -> Option<Duration> {
        let now = self.clock.now();
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let c = state.cached.as_ref()?;
        match freshness(now, c.expires_at, c.refresh_at) {
            Freshness::Expired => None,
            _ => Some(c.expires_at - now),
        }
    }

    /// Token requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A valid token, from cache or freshly obtained.
    pub async fn token(self: &Arc<Self>) -> Result<Secret, EntraError> {
        match self.cached() {
            Ok(Some((token, Freshness::Fresh))) => return Ok(token),
            Ok(Some((token, _stale))) => {
                self.refresh_in_background();
                return Ok(token);
            }
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        let _flight = self.flight.lock().await;
        // Someone else may have refreshed (or failed) while we waited.
        match self.cached() {
            Ok(Some((token, _))) => return Ok(token),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        self.fetch().await
    }

    /// The cached token and its freshness; `Err` while a recent failure blocks new attempts.
    fn cached(&self) -> Result<Option<(Secret, Freshness)>, EntraError> {
        let now = self.clock.now();
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &state.cached {
            match freshness(now, c.expires_at, c.refresh_at) {
                Freshness::Expired => {}
                f => return Ok(Some((c.token.clone(), f))),
            }
        }
        match &state.failure {
            Some((at, backoff, err)) if now < *at + *backoff => Err(err.clone()),
            _ => Ok(None),
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(flight) = self.flight.try_lock() else {
            return;
        };
        drop(flight);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let Ok(_flight) = this.flight.try_lock() else {
                return;
            };
            if let Ok(Some((_, Freshness::Stale))) = this.cached()
                && let Err(e) = this.fetch().await
            {
                tracing::warn!(error = %e, "background token refresh failed; the current token is still valid");
            }
        });
    }

    /// Requests a token now. Callers hold the flight lock.
    async fn fetch(&self) -> Result<Secret, EntraError> {
        let started = self.clock.now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let result = match self.credential() {
            Ok(secret) => entra::request_token(&self.http, &self.auth, &secret).await,
            Err(e) => Err(e),
        };
        self.outcomes[usize::from(result.is_err())].fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(issued) => {
                let expires_at = started + issued.expires_in;
                let refresh_at = refresh_at(started, issued.expires_in, issued.refresh_in);
                state.cached = Some(Cached {
                    token: issued.access_token.clone(),
                    expires_at,
                    refresh_at,
                });
                state.failure = None;
                tracing::info!(client_id = %self.auth.client_id, expires_in = issued.expires_in.as_secs(), "token obtained");
                Ok(issued.access_token)
            }
            Err(e) => {
                let backoff = match &e {
                    EntraError::Throttled {
                        retry_after: Some(s),
                    } => FAILURE_BACKOFF.max(Duration::from_secs(*s)),
                    _ => FAILURE_BACKOFF,
                };
                tracing::error!(client_id = %self.auth.client_id, error = %e, "token request failed");
                state.failure = Some((self.clock.now(), backoff, e.clone()));
                Err(e)
            }
        }
    }

    /// The secret, read now (so a rotated `file:` secret is picked up by the next request).
    fn credential(&self) -> Result<Secret, EntraError> {
        match &self.auth.credential {
            Credential::ClientSecret(r) => r
                .resolve()
                .map_err(|e| EntraError::Credential(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_policy() {
        let t0 = Instant::now();
        let life = Duration::from_secs(3599);
        let r = refresh_at(t0, life, None);
        assert_eq!(r - t0, Duration::from_secs(3299));
        let exp = t0 + life;
        assert_eq!(freshness(t0, exp, r), Freshness::Fresh);
        assert_eq!(freshness(r, exp, r), Freshness::Stale);
        assert_eq!(freshness(exp - EXPIRY_MARGIN, exp, r), Freshness::Expired);
        assert_eq!(
            freshness(exp + Duration::from_secs(1), exp, r),
            Freshness::Expired
        );
        // refresh_in wins when earlier; never later than 5 minutes before expiry
        assert_eq!(
            refresh_at(t0, life, Some(Duration::from_secs(1800))) - t0,
            Duration::from_secs(1800)
        );
        assert_eq!(
            refresh_at(t0, life, Some(Duration::from_secs(9999))) - t0,
            Duration::from_secs(3299)
        );
        // short lifetimes refresh at half-life
        assert_eq!(
            refresh_at(t0, Duration::from_secs(300), None) - t0,
            Duration::from_secs(150)
        );
    }
}
