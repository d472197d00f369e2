//! Dataverse throttling, remembered: after a 429 with `Retry-After`, a tenant is cooled down for
//! that long (sending more makes Dataverse's penalty longer), then ramps up at half concurrency
//! for a window before returning to full speed.
//!
//! Pure state machine over injected instants: no I/O, no clock of its own.

use std::time::{Duration, Instant};

/// The shortest ramp-up window after a cooldown.
pub const MIN_RAMP: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cooldown {
    until: Option<Instant>,
    ramp_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Normal,
    /// No requests until the end of the cooldown.
    Cooling {
        remaining: Duration,
    },
    /// Half concurrency.
    Ramping,
}

impl Cooldown {
    /// Dataverse asked for `retry_after`: keep the later of the current and the new end.
    pub fn throttled(&mut self, now: Instant, retry_after: Duration) {
        let until = now + retry_after;
        if self.until.is_none_or(|u| u < until) {
            self.until = Some(until);
            self.ramp_until = Some(until + retry_after.max(MIN_RAMP));
        }
    }

    /// [`Self::phase`] with the clock read only when a cooldown or ramp has been recorded (the
    /// usual case reads none), and both forgotten once they are over.
    pub fn current(&mut self, now: impl FnOnce() -> Instant) -> Phase {
        if self.until.is_none() && self.ramp_until.is_none() {
            return Phase::Normal;
        }
        let phase = self.phase(now());
        if phase == Phase::Normal {
            *self = Cooldown::default();
        }
        phase
    }

    pub fn phase(&self, now: Instant) -> Phase {
        match (self.until, self.ramp_until) {
            (Some(u), _) if now < u => Phase::Cooling { remaining: u - now },
            (_, Some(r)) if now < r => Phase::Ramping,
            _ => Phase::Normal,
        }
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cools_then_ramps_then_runs() {
        let t0 = Instant::now();
        let mut c = Cooldown::default();
        assert_eq!(c.phase(t0), Phase::Normal);
        c.throttled(t0, Duration::from_secs(2));
        assert_eq!(
            c.phase(t0),
            Phase::Cooling {
                remaining: Duration::from_secs(2)
            }
        );
        assert_eq!(
            c.phase(t0 + Duration::from_millis(1500)),
            Phase::Cooling {
                remaining: Duration::from_millis(500)
            }
        );
        assert_eq!(c.phase(t0 + Duration::from_secs(2)), Phase::Ramping);
        assert_eq!(c.phase(t0 + Duration::from_secs(7)), Phase::Normal);
        // a shorter Retry-After never shortens a cooldown
        c.throttled(t0 + Duration::from_secs(1), Duration::from_millis(100));
        assert_eq!(
            c.phase(t0 + Duration::from_millis(1500)),
            Phase::Cooling {
                remaining: Duration::from_millis(500)
            }
        );
    }

    #[test]
    fn current_reads_the_clock_only_while_a_cooldown_or_ramp_is_recorded() {
        let t0 = Instant::now();
        let mut c = Cooldown::default();
        let unread = || -> Instant { panic!("the clock was read without a cooldown") };
        assert_eq!(c.current(unread), Phase::Normal);
        c.throttled(t0, Duration::from_secs(2));
        assert_eq!(
            c.current(|| t0 + Duration::from_secs(1)),
            Phase::Cooling {
                remaining: Duration::from_secs(1)
            }
        );
        assert_eq!(c.current(|| t0 + Duration::from_secs(3)), Phase::Ramping);
        // Over: forgotten, so the next requests read no clock again.
        assert_eq!(c.current(|| t0 + Duration::from_secs(7)), Phase::Normal);
        assert_eq!(c.current(unread), Phase::Normal);
        // A new throttle after that starts afresh.
        c.throttled(t0 + Duration::from_secs(8), Duration::from_secs(1));
        assert_eq!(
            c.current(|| t0 + Duration::from_secs(8)),
            Phase::Cooling {
                remaining: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
