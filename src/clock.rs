//! Injected time. Everything whose behaviour depends on "now" (token expiry, rate limits,
//! throttling cooldowns, the simulator's token validation) reads it from a [`Clock`] and waits
//! with [`Clock::sleep_until`], so tests move time with [`ManualClock`] instead of sleeping.
//!
//! Invariant: a clock never goes backwards; a sleep ends once the clock reaches its deadline.
//! Wall time ([`Clock::wall`], for JWT claims) moves with the same clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of monotonic time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;

    /// Completes when [`Clock::now`] reaches `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// Wall-clock time (client assertions' `iat`/`nbf`/`exp`, certificate validity).
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// A clock that only moves when a test calls [`ManualClock::advance`].
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    wall_start: SystemTime,
    offset: Arc<Mutex<Duration>>,
    moved: Arc<Notify>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            wall_start: SystemTime::now(),
            offset: Arc::default(),
            moved: Arc::new(Notify::new()),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
        self.moved.notify_waiters();
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

fn read(offset: &Mutex<Duration>) -> Duration {
    *offset.lock().unwrap_or_else(|e| e.into_inner())
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + read(&self.offset)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let (start, offset, moved) = (
            self.start,
            Arc::clone(&self.offset),
            Arc::clone(&self.moved),
        );
        Box::pin(async move {
            loop {
                let notified = moved.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if start + read(&offset) >= deadline {
                    return;
                }
                notified.await;
            }
        })
    }

    fn wall(&self) -> SystemTime {
        self.wall_start + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - t0, Duration::from_secs(90));
    }

    #[tokio::test]
    async fn manual_sleeps_end_when_the_clock_reaches_them() {
        let clock = Arc::new(ManualClock::new());
        let deadline = clock.now() + Duration::from_secs(2);
        let sleep = tokio::spawn(clock.sleep_until(deadline));
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(1));
        tokio::task::yield_now().await;
        assert!(!sleep.is_finished());
        clock.advance(Duration::from_secs(1));
        sleep.await.unwrap();
    }
}
