//! What one agent connection is doing: requests in progress, since when it has had none, and
//! whether a response piece waits for the agent to read it. The server's timers close a
//! connection on it (`timeouts.request_head`, `timeouts.response_body_idle`); each request
//! carries a [`RequestGuard`] through the pipeline until its response body ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

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
pub struct RequestGuard {
    activity: Arc<Activity>,
    /// When the request ended, if the pipeline said so ([`RequestGuard::ending_at`]).
    ended_ms: Option<u64>,
}

impl RequestGuard {
    /// A response piece was handed to the connection: it now waits for the agent to read.
    pub fn delivered(&self) {
        let a = &self.activity;
        if a.unread_since_ms.load(Ordering::Relaxed) == NOT_WAITING {
            a.unread_since_ms.store(a.now_ms(), Ordering::Release);
        }
    }

    /// The connection asked for the next piece: the agent is reading.
    pub fn asked(&self) {
        self.activity
            .unread_since_ms
            .store(NOT_WAITING, Ordering::Release);
    }

    /// The request ends at `now`, a time the caller has just read: the guard's drop records it
    /// instead of reading the clock once more.
    pub fn ending_at(&mut self, now: tokio::time::Instant) {
        self.ended_ms = Some(self.activity.ms_at(now));
    }
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: tokio::time::Instant::now(),
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            unread_since_ms: AtomicU64::new(NOT_WAITING),
        })
    }

    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            activity: Arc::clone(self),
            ended_ms: None,
        }
    }

    fn now_ms(&self) -> u64 {
        self.ms_at(tokio::time::Instant::now())
    }

    fn ms_at(&self, at: tokio::time::Instant) -> u64 {
        let since = at.saturating_duration_since(self.started);
        u64::try_from(since.as_millis()).unwrap_or(NOT_WAITING - 1)
    }

    fn at(&self, ms: u64) -> tokio::time::Instant {
        self.started + Duration::from_millis(ms)
    }

    /// Completes when the connection has had no request in progress for `idle`, or when a
    /// response piece has waited `unread` for the agent to read it.
    pub async fn closing(&self, idle: Duration, unread: Duration) -> Closed {
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
        let a = &self.activity;
        let ended = self.ended_ms.unwrap_or_else(|| a.now_ms());
        a.idle_since_ms.store(ended, Ordering::Release);
        a.unread_since_ms.store(NOT_WAITING, Ordering::Release);
        a.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}
