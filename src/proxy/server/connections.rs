//! Agent connections as a bounded resource: admitting them against the
//! [`Listener`] state (open connections, the cap, whether accepting works) and the quiet
//! [`AcceptBackoff`]. What each connection is doing lives in [`crate::proxy::activity`].

use std::sync::Arc;
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
