//! Agent connections as a bounded resource: admitting them against the [`Listener`] state (open
//! connections, the cap, whether accepting works), the quiet [`AcceptBackoff`], and each connection's [`Activity`]
//! (requests in progress, and since when it has had none) that `timeouts.request_head` bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::proxy::gateway::{Gateway, Listener};

use super::ACCEPT_BACKOFF_MAX;

/// Counts a new connection, or refuses it at the cap.
pub(super) fn admit(gateway: &Arc<Gateway>) -> Option<Connection> {
    gateway
        .listener
        .take()
        .then(|| Connection(Arc::clone(gateway)))
}

/// One open agent connection, counted until dropped.
pub(super) struct Connection(Arc<Gateway>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.listener.give_back();
    }
}

/// Backs off while `accept` fails, logging once when failures start and once when they stop.
pub struct AcceptBackoff {
    what: &'static str,
    failures: u64,
    delay: Duration,
}

impl AcceptBackoff {
    pub fn new(what: &'static str) -> AcceptBackoff {
        AcceptBackoff {
            what,
            failures: 0,
            delay: Duration::from_millis(5),
        }
    }

    /// `accept` failed: logs (first failure only) and waits before the next attempt.
    pub async fn failed(&mut self, error: &std::io::Error, state: Option<&Listener>) {
        if self.failures == 0 {
            tracing::warn!(listener = self.what, error = %error, "accept failing; backing off (up to 1 s between attempts) until it works again");
            if let Some(l) = state {
                l.set_accept_failing(true);
            }
        }
        self.failures += 1;
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
    }

    /// `accept` worked.
    pub fn succeeded(&mut self, state: Option<&Listener>) {
        if self.failures > 0 {
            tracing::info!(
                listener = self.what,
                failures = self.failures,
                "accepting connections again"
            );
            if let Some(l) = state {
                l.set_accept_failing(false);
            }
            self.failures = 0;
            self.delay = Duration::from_millis(5);
        }
    }
}

/// What one connection is doing: requests in progress, and since when it has had none.
pub struct Activity {
    started: tokio::time::Instant,
    in_progress: AtomicUsize,
    /// Milliseconds after `started` when the last request ended.
    idle_since_ms: AtomicU64,
    /// Milliseconds after `started` since when a response piece waits for the agent to read
    /// it ([`NOT_WAITING`]: none does).
    unread_since_ms: AtomicU64,
}

const NOT_WAITING: u64 = u64::MAX;

/// Why a connection was closed by its own timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No request within `timeouts.request_head`.
    Idle,
    /// The agent left the response unread for `timeouts.response_body_idle`.
    Unread,
}

/// One request in progress on its connection, until its response body ends or is dropped.
pub struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    /// A response piece was handed to the connection: it now waits for the agent to read.
    pub fn delivered(&self) {
        let a = &self.0;
        if a.unread_since_ms.load(Ordering::Relaxed) == NOT_WAITING {
            a.unread_since_ms.store(a.now_ms(), Ordering::Release);
        }
    }

    /// The connection asked for the next piece: the agent is reading.
    pub fn asked(&self) {
        self.0.unread_since_ms.store(NOT_WAITING, Ordering::Release);
    }
}

impl Activity {
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: tokio::time::Instant::now(),
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            unread_since_ms: AtomicU64::new(NOT_WAITING),
        })
    }

    pub(super) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(self))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NOT_WAITING - 1)
    }

    fn at(&self, ms: u64) -> tokio::time::Instant {
        self.started + Duration::from_millis(ms)
    }

    /// Completes when the connection has had no request in progress for `idle`, or when a
    /// response piece has waited `unread` for the agent to read it.
    pub(super) async fn closing(&self, idle: Duration, unread: Duration) -> Closed {
        loop {
            let now = tokio::time::Instant::now();
            if self.in_progress.load(Ordering::Acquire) == 0 {
                let due = self.at(self.idle_since_ms.load(Ordering::Acquire)) + idle;
                if now >= due {
                    return Closed::Idle;
                }
                tokio::time::sleep_until(due).await;
                continue;
            }
            let since = self.unread_since_ms.load(Ordering::Acquire);
            if since != NOT_WAITING && now >= self.at(since) + unread {
                return Closed::Unread;
            }
            let next = match since {
                NOT_WAITING => now + idle.min(unread),
                ms => self.at(ms) + unread,
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since_ms.store(a.now_ms(), Ordering::Release);
        a.unread_since_ms.store(NOT_WAITING, Ordering::Release);
        a.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}
