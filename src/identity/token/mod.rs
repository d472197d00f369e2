//! Access tokens per (authority, tenant, client, scope): cache, single flight, proactive
//! refresh, and the credentials that obtain them.
//!
//! Invariants:
//! - at most one token request per source is in flight: N concurrent callers on a cold or
//!   expired cache cause exactly one request. It runs in its own task, bounded by
//!   `timeouts.token_request`; a caller that stops waiting does not cancel it;
//! - a request without a valid token waits for that fetch at most `timeouts.token_wait`
//!   counted from when the fetch STARTED ([`TokenSource::token_within`]): while a fetch hangs,
//!   later requests fail at once (503 `GatewayTokenUnavailable`) instead of queueing behind it;
//! - a token is never handed out within [`EXPIRY_MARGIN`] of its expiry;
//! - from the refresh point (`refresh_in` when Entra gives it, else about 80% of the lifetime
//!   with jitter, never later than [`REFRESH_BEFORE_EXPIRY`] before expiry) a background task
//!   refreshes while callers keep getting the still-valid token, also when the refresh fails
//!   (an outage of the token endpoint is invisible until the token really expires);
//! - after a failed request, no new request is made for [`FAILURE_BACKOFF`] (or the
//!   `Retry-After` Entra asked for, if longer); callers without a valid token get the failure;
//! - "now" comes from the injected [`Clock`].
//!
//! The cache policy ([`freshness`], [`refresh_at`]) is pure and unit-tested; the shell around it
//! is async. Credentials live in [`credential`]; sharing between tenants in [`registry`].

pub mod aadsts;
pub mod certificate;
pub mod credential;
pub mod entra;
pub mod managed;
pub mod registry;
pub mod workload;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::Auth;
use crate::config::secret::Secret;
use credential::CredentialSource;
pub use entra::EntraError;

/// A token this close to expiry is not used.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Refresh this long before expiry at the latest.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Minimum time between failed attempts.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// How often (real time, at most) the background task looks at the cache.
const REFRESH_POLL: Duration = Duration::from_millis(250);

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

/// When to refresh a token issued at `issued` with the given lifetime. `jitter` in `[0, 1)`
/// spreads refreshes between 75% and 85% of the lifetime when Entra gives no `refresh_in`.
pub fn refresh_at(
    issued: Instant,
    lifetime: Duration,
    refresh_in: Option<Duration>,
    jitter: f64,
) -> Instant {
    let latest = if lifetime > REFRESH_BEFORE_EXPIRY * 2 {
        lifetime - REFRESH_BEFORE_EXPIRY
    } else {
        lifetime / 2
    };
    let around_80 = lifetime.mul_f64(0.75 + 0.10 * jitter.clamp(0.0, 1.0));
    issued + refresh_in.unwrap_or(around_80).min(latest)
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    failure: Option<(Instant, Duration, EntraError)>,
    /// When the token request in flight started (single flight).
    fetching: Option<Instant>,
}

/// The token source of one (authority, tenant, client, scope, credential).
pub struct TokenSource {
    auth: Auth,
    credential: CredentialSource,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Signalled when a fetch finishes (either way).
    fetched: tokio::sync::Notify,
    requests: AtomicU64,
    /// Finished token requests by outcome (for metrics).
    outcomes: [AtomicU64; 2],
    background: AtomicBool,
}

impl TokenSource {
    pub fn new(auth: Auth, http: reqwest::Client, clock: Arc<dyn Clock>) -> Arc<TokenSource> {
        let credential =
            CredentialSource::new(&auth.credential, |k| std::env::var(k).ok(), &http, &clock);
        let source = Arc::new(TokenSource {
            auth,
            credential,
            http,
            clock,
            state: Mutex::new(State::default()),
            fetched: tokio::sync::Notify::new(),
            requests: AtomicU64::new(0),
            outcomes: [AtomicU64::new(0), AtomicU64::new(0)],
            background: AtomicBool::new(false),
        });
        source.warn_about_certificate();
        source
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The credential in use, for logs and reports (never its value).
    pub fn describe(&self) -> String {
        self.credential.describe()
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

    /// Seconds until the certificate credential's `notAfter` (a metric), `None` for other
    /// credentials or when the certificate cannot be read.
    pub fn certificate_seconds_left(&self) -> Option<i64> {
        self.credential.certificate_seconds_left(self.clock.wall())
    }

    /// The Key Vault credential's state (`None` for other credentials).
    pub fn vault(&self) -> Option<&Arc<crate::identity::vault::VaultSource>> {
        self.credential.vault()
    }

    /// The certificate credential's expiry warning, if it needs attention.
    pub fn certificate_warning(&self) -> Option<String> {
        if let Some(v) = self.credential.vault() {
            return v.certificate_warning(self.clock.wall());
        }
        let cert = self.credential.certificate()?.ok()?;
        credential::expiry_warning(&cert, self.clock.wall())
    }

    fn warn_about_certificate(&self) {
        match self.credential.certificate() {
            Some(Ok(cert)) => {
                if let Some(w) = credential::expiry_warning(&cert, self.clock.wall()) {
                    tracing::warn!(client_id = %self.auth.client_id, "{w}");
                }
            }
            Some(Err(e)) => {
                tracing::warn!(client_id = %self.auth.client_id, error = %e, "the certificate credential cannot be loaded yet")
            }
            None => {}
        }
    }

    /// A valid token, from cache or freshly obtained (waiting as long as the token request
    /// takes; it is bounded by `timeouts.token_request`).
    pub async fn token(self: &Arc<Self>) -> Result<Secret, EntraError> {
        self.token_within(None).await
    }

    /// A valid token; without one, waits for the token request in flight until `wait` after
    /// it started, then fails with [`EntraError::Pending`].
    pub async fn token_within(
        self: &Arc<Self>,
        wait: Option<Duration>,
    ) -> Result<Secret, EntraError> {
        self.start_background();
        match self.cached() {
            Ok(Some((token, Freshness::Fresh))) => return Ok(token),
            Ok(Some((token, _stale))) => {
                self.refresh_in_background();
                return Ok(token);
            }
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        loop {
            let fetched = self.fetched.notified();
            tokio::pin!(fetched);
            fetched.as_mut().enable();
            // Someone else may have fetched (or failed) meanwhile.
            match self.cached() {
                Ok(Some((token, _))) => return Ok(token),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
            let since = self.start_fetch();
            let Some(wait) = wait else {
                fetched.await;
                continue;
            };
            let now = self.clock.now();
            if now >= since + wait {
                return Err(EntraError::Pending {
                    waited_ms: (now - since).as_millis(),
                });
            }
            tokio::select! {
                () = &mut fetched => {}
                () = self.clock.sleep_until(since + wait) => {}
            }
        }
    }

    /// Dataverse refused `rejected` (401): forget it, so the next [`TokenSource::token`] call
    /// gets a new one. A token that was already replaced is left alone.
    pub fn reject(&self, rejected: &Secret) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.cached.as_ref().is_some_and(|c| &c.token == rejected) {
            tracing::warn!(client_id = %self.auth.client_id, "Dataverse refused the cached token; getting a new one");
            state.cached = None;
        }
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

    /// Whether a refresh is due and allowed now (stale or expired, and not backing off).
    fn refresh_due(&self) -> bool {
        let now = self.clock.now();
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = match &state.cached {
            Some(c) => freshness(now, c.expires_at, c.refresh_at) != Freshness::Fresh,
            None => false,
        };
        let backing_off = matches!(&state.failure, Some((at, backoff, _)) if now < *at + *backoff);
        due && !backing_off
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refresh_due() {
            self.start_fetch();
        }
    }

    /// Starts the token request unless one is in flight; returns when the one in flight began.
    fn start_fetch(self: &Arc<Self>) -> Instant {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = state.fetching {
            return since;
        }
        let now = self.clock.now();
        state.fetching = Some(now);
        drop(state);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _ = this.fetch().await;
            this.fetched.notify_waiters();
        });
        now
    }

    /// Starts the task that refreshes proactively, once per source; it ends with the source.
    fn start_background(self: &Arc<Self>) {
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<TokenSource> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_POLL).await;
                let Some(this) = weak.upgrade() else { return };
                this.refresh_in_background();
                if let Some(vault) = this.credential.vault() {
                    vault.poll();
                }
            }
        });
    }

    /// Requests a token now. Only [`TokenSource::start_fetch`]'s task calls it.
    async fn fetch(&self) -> Result<Secret, EntraError> {
        let started = self.clock.now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let result = self
            .credential
            .acquire(&self.http, &self.auth, self.clock.wall())
            .await;
        self.outcomes[usize::from(result.is_err())].fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.fetching = None;
        match result {
            Ok(issued) => {
                let expires_at = started + issued.expires_in;
                let jitter = f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65_536.0;
                let refresh_at = refresh_at(started, issued.expires_in, issued.refresh_in, jitter);
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
                let now = self.clock.now();
                let valid_for = state.cached.as_ref().and_then(|c| {
                    (freshness(now, c.expires_at, c.refresh_at) != Freshness::Expired)
                        .then(|| (c.expires_at - EXPIRY_MARGIN).saturating_duration_since(now))
                });
                match valid_for {
                    Some(left) => tracing::warn!(
                        client_id = %self.auth.client_id,
                        error = %e,
                        retry_in_s = backoff.as_secs(),
                        valid_for_s = left.as_secs(),
                        "token refresh failed; the cached token stays in use until it expires"
                    ),
                    None => tracing::error!(
                        client_id = %self.auth.client_id,
                        error = %e,
                        retry_in_s = backoff.as_secs(),
                        "token request failed and no valid token is cached: requests get 503 GatewayTokenUnavailable until one is obtained"
                    ),
                }
                state.failure = Some((now, backoff, e.clone()));
                Err(e)
            }
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
        let r = refresh_at(t0, life, None, 0.5);
        assert_eq!((r - t0).as_secs(), 2879, "80% of the lifetime");
        assert_eq!((refresh_at(t0, life, None, 0.0) - t0).as_secs(), 2699);
        assert_eq!((refresh_at(t0, life, None, 0.999) - t0).as_secs(), 3058);
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
            refresh_at(t0, life, Some(Duration::from_secs(1800)), 0.5) - t0,
            Duration::from_secs(1800)
        );
        assert_eq!(
            refresh_at(t0, life, Some(Duration::from_secs(9999)), 0.5) - t0,
            Duration::from_secs(3299)
        );
        // short lifetimes refresh at half-life
        assert_eq!(
            refresh_at(t0, Duration::from_secs(300), None, 0.999) - t0,
            Duration::from_secs(150)
        );
    }
}

#[cfg(test)]
mod wait_tests;
