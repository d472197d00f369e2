//! The state one running simulator shares between its connections and its [`Simulator`] handle:
//! configuration, issued tokens, rows, recorded requests, throttling and concurrency counters.
//!
//! Invariants: "now" comes only from the injected clock; every lock is held for a short,
//! non-async section and a poisoned lock is recovered (a panicking test must not cascade).
//!
//! [`Simulator`]: super::Simulator

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::data::Store;
use super::{RecordedRequest, SimApp, SimConfig};
use crate::clock::Clock;

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A token this simulator issued.
#[derive(Debug, Clone, Copy)]
pub struct Issued {
    pub expires_at: Instant,
    /// Index of the app in `SimConfig::apps`.
    pub app: usize,
}

pub struct Shared {
    pub base_url: String,
    pub apps: Vec<SimApp>,
    pub token_lifetime: Duration,
    pub refresh_in: Option<Duration>,
    pub readable: HashSet<String>,
    pub large_response_bytes: u64,
    pub clock: Arc<dyn Clock>,
    /// When the simulator started, on its clock; the origin of Entra's display timestamps.
    pub started: Instant,
    pub tokens: Mutex<HashMap<String, Issued>>,
    pub store: Mutex<Store>,
    pub token_requests: AtomicUsize,
    pub requests: Mutex<Vec<RecordedRequest>>,
    /// How many requests `requests` holds, for tests to await rather than poll.
    pub recorded: watch::Sender<usize>,
    /// Open (`true`) unless a test holds Dataverse responses back.
    pub gate: watch::Sender<bool>,
    /// Remaining throttled requests and the Retry-After to send them.
    pub throttle: Mutex<(usize, u64)>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub delay: Mutex<Duration>,
    pub creds: super::credentials::CredState,
    pub vault: super::vault::VaultState,
}

impl Shared {
    pub fn new(config: SimConfig, base_url: String) -> Self {
        let client_ids: Vec<&str> = config.apps.iter().map(|a| a.client_id.as_str()).collect();
        let store = super::seed::seeded_store(&client_ids);
        let started = config.clock.now();
        let creds = super::credentials::CredState::new(&config);
        Self {
            base_url,
            readable: config.readable_tables.into_iter().collect(),
            apps: config.apps,
            token_lifetime: config.token_lifetime,
            refresh_in: config.refresh_in,
            large_response_bytes: config.large_response_bytes,
            clock: config.clock,
            started,
            tokens: Mutex::new(HashMap::new()),
            store: Mutex::new(store),
            token_requests: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            recorded: watch::Sender::new(0),
            gate: watch::Sender::new(true),
            throttle: Mutex::new((0, 0)),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
            creds,
            vault: Default::default(),
        }
    }

    /// The org's home tenant, named in `WWW-Authenticate` challenges.
    pub fn home_tenant(&self) -> &str {
        self.apps
            .first()
            .map_or(super::DEFAULT_TENANT_ID, |a| a.tenant_id.as_str())
    }

    /// Remembers a new token, dropping tokens that have already expired.
    pub fn remember_token(&self, token: String, issued: Issued) {
        let now = self.clock.now();
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, t| t.expires_at > now);
        tokens.insert(token, issued);
    }

    /// The token's record when this simulator issued it and it has not expired.
    pub fn valid_token(&self, token: &str) -> Option<Issued> {
        let now = self.clock.now();
        lock(&self.tokens)
            .get(token)
            .copied()
            .filter(|t| now < t.expires_at)
    }

    /// Consumes one throttled slot; `Some(retry_after_secs)` when this request is throttled.
    pub fn take_throttle(&self) -> Option<u64> {
        let mut throttle = lock(&self.throttle);
        if throttle.0 == 0 {
            return None;
        }
        throttle.0 -= 1;
        Some(throttle.1)
    }

    /// Records a Dataverse request and wakes whoever awaits the count.
    pub fn record(&self, request: RecordedRequest) {
        let mut requests = lock(&self.requests);
        requests.push(request);
        self.recorded.send_replace(requests.len());
    }

    /// Forgets the recorded requests.
    pub fn clear_recorded(&self) {
        let mut requests = lock(&self.requests);
        requests.clear();
        self.recorded.send_replace(0);
    }

    /// Completes when no test holds responses back.
    pub async fn gate_open(&self) {
        let mut open = self.gate.subscribe();
        // `wait_for` fails only when the sender is gone, and `self` owns it.
        let _ = open.wait_for(|open| *open).await;
    }

    /// Counts a Dataverse request as in flight until the guard drops.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }
}

/// Decrements the in-flight count when dropped (also when the request is cancelled).
pub struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
