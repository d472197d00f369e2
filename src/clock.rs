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

/// The wall-clock time at `at`, a recent monotonic instant, without a read of the wall clock
/// per call (each read of either clock costs ~20 ns on a virtual machine, and a request
/// already reads the monotonic one): each thread keeps a (monotonic, wall) pair read together
/// and renews it once `at` is a second past it. So a step of the system clock shows within a
/// second, and the error in between is the drift of the two clocks over at most a second
/// (under a millisecond at NTP's 500 ppm bound on slewing). For the audit log's timestamps,
/// which have millisecond precision.
pub fn wall_at(at: Instant) -> SystemTime {
    use std::cell::Cell;
    use std::time::UNIX_EPOCH;
    const RENEW: Duration = Duration::from_secs(1);
    thread_local! {
        /// A monotonic instant and the wall clock's time since the epoch at that instant.
        static ANCHOR: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
    }
    let (mono, wall) = ANCHOR.with(|anchor| match anchor.get() {
        Some((mono, wall)) if at < mono + RENEW => (mono, wall),
        _ => {
            let pair = (
                Instant::now(),
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default(),
            );
            anchor.set(Some(pair));
            pair
        }
    });
    // An instant read before the pair (by another request) is counted back from it.
    let since_epoch = match at.checked_duration_since(mono) {
        Some(later) => wall + later,
        None => wall.saturating_sub(mono.duration_since(at)),
    };
    UNIX_EPOCH + since_epoch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_at_follows_the_wall_clock_and_the_instants_order() {
        let close = |a: SystemTime, b: SystemTime| {
            let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
            assert!(d < Duration::from_millis(50), "{a:?} against {b:?}");
        };
        let t0 = Instant::now();
        close(wall_at(t0), SystemTime::now());
        // Later instants within the pair's second, and an earlier one, counted from the pair.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!(
            wall_at(t1).duration_since(wall_at(t0)).unwrap(),
            Duration::from_millis(300)
        );
        let before = t0 - Duration::from_millis(200);
        assert_eq!(
            wall_at(t0).duration_since(wall_at(before)).unwrap(),
            Duration::from_millis(200)
        );
        // Past the second: the pair is read again, from the wall clock.
        let later = Instant::now() + Duration::from_secs(5);
        close(wall_at(later), SystemTime::now() + Duration::from_secs(5));
    }

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
