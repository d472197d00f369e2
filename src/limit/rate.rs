//! The per-tenant request rate: GCRA with governor on the injected clock, and the IETF
//! rate-limit headers (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` and `RateLimit`)
//! every response of the tenant carries.
//!
//! Policy `q` is the burst (the most requests admitted at once) and `w` the seconds a full burst
//! takes to refill; `RateLimit` gives `r`, the requests left now, and `t`, the seconds until the
//! full burst is available again.

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::clock::Clock;

/// governor's view of our injected clock.
#[derive(Clone)]
pub struct GovClock(pub Arc<dyn Clock>);

impl governor::clock::Clock for GovClock {
    type Instant = Instant;
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// A rate and burst, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// Seconds to refill a full burst, rounded up.
    pub fn window_secs(&self) -> u64 {
        u64::from(self.burst).div_ceil(u64::from(self.per_second.max(1)))
    }
}

/// The outcome of one rate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admitted { remaining: u32, reset: Duration },
    Limited { retry_after: Duration },
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, GovClock, StateInformationMiddleware>;

pub struct LocalRate {
    rate: Rate,
    limiter: Limiter,
    clock: Arc<dyn Clock>,
}

impl LocalRate {
    pub fn new(rate: Rate, clock: Arc<dyn Clock>) -> LocalRate {
        let per = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per);
        let limiter = RateLimiter::direct_with_clock(
            Quota::per_second(per).allow_burst(burst),
            GovClock(Arc::clone(&clock)),
        )
        .with_middleware::<StateInformationMiddleware>();
        LocalRate {
            rate,
            limiter,
            clock,
        }
    }

    pub fn check(&self) -> Verdict {
        match self.limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Verdict::Admitted {
                    remaining,
                    reset: refill(self.rate, remaining),
                }
            }
            Err(not_until) => Verdict::Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }
}

/// Time until a bucket with `remaining` requests left is full again.
pub fn refill(rate: Rate, remaining: u32) -> Duration {
    let missing = rate.burst.saturating_sub(remaining);
    Duration::from_secs_f64(f64::from(missing) / f64::from(rate.per_second.max(1)))
}

/// The `RateLimit-Policy` value of `rate`: it never changes, so it is built once per tenant.
pub fn policy_header(label: &str, rate: Rate) -> Option<HeaderValue> {
    let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
    header_value(&[
        "\"",
        label,
        "\";q=",
        a.format(rate.burst),
        ";w=",
        b.format(rate.window_secs()),
    ])
}

/// Adds `RateLimit-Policy` (`policy`, from [`policy_header`]) and `RateLimit` to `headers` (on
/// every response: built without the formatting machinery).
///
/// The `RateLimit` value last built on this thread is kept with what it says, and given again
/// (shared, a reference count) when the next response says the same: a tenant inside its limit
/// has a full bucket on every request, so its responses carry one value, not one allocation each.
pub fn add_headers(
    headers: &mut HeaderMap,
    label: &'static str,
    policy: &HeaderValue,
    remaining: u32,
    reset: Duration,
) {
    thread_local! {
        static LAST: RefCell<Option<(&'static str, u32, u64, HeaderValue)>> =
            const { RefCell::new(None) };
    }
    let reset = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
    let now = LAST.with_borrow_mut(|last| match last {
        Some((l, r, t, value))
            if *r == remaining && *t == reset && (std::ptr::eq(*l, label) || *l == label) =>
        {
            Some(value.clone())
        }
        _ => {
            let (mut c, mut d) = (itoa::Buffer::new(), itoa::Buffer::new());
            let value = header_value(&[
                "\"",
                label,
                "\";r=",
                c.format(remaining),
                ";t=",
                d.format(reset),
            ])?;
            *last = Some((label, remaining, reset, value.clone()));
            Some(value)
        }
    });
    if let Some(now) = now {
        static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
        static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
        headers.insert(POLICY.clone(), policy.clone());
        headers.insert(RATELIMIT.clone(), now);
    }
}

/// The concatenation of `parts` (at most 96 bytes) as a header value.
fn header_value(parts: &[&str]) -> Option<HeaderValue> {
    let mut buf = [0u8; 96];
    let mut len = 0;
    for p in parts {
        buf.get_mut(len..len + p.len())?
            .copy_from_slice(p.as_bytes());
        len += p.len();
    }
    HeaderValue::from_bytes(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn admits_the_burst_then_the_rate() {
        let clock = Arc::new(ManualClock::new());
        let rate = Rate {
            per_second: 10,
            burst: 5,
        };
        let l = LocalRate::new(rate, clock.clone());
        for left in (0..5).rev() {
            assert!(matches!(l.check(), Verdict::Admitted { remaining, .. } if remaining == left));
        }
        let Verdict::Limited { retry_after } = l.check() else {
            panic!("over the burst")
        };
        assert_eq!(retry_after, Duration::from_millis(100));
        clock.advance(Duration::from_millis(100));
        assert!(matches!(l.check(), Verdict::Admitted { remaining: 0, .. }));
    }

    /// `RateLimit-Policy` of a tenant allowed 20 requests a second in bursts of 40.
    fn tenant_policy() -> HeaderValue {
        policy_header(
            "tenant",
            Rate {
                per_second: 20,
                burst: 40,
            },
        )
        .unwrap()
    }

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        let policy = tenant_policy();
        add_headers(&mut h, "tenant", &policy, 39, Duration::from_millis(50));
        assert_eq!(h["ratelimit-policy"], "\"tenant\";q=40;w=2");
        assert_eq!(h["ratelimit"], "\"tenant\";r=39;t=1");
    }

    #[test]
    fn a_value_given_again_says_exactly_what_the_response_says() {
        let policy = tenant_policy();
        let ratelimit = |label, remaining, reset_ms| {
            let mut h = HeaderMap::new();
            add_headers(
                &mut h,
                label,
                &policy,
                remaining,
                Duration::from_millis(reset_ms),
            );
            h["ratelimit"].clone()
        };
        // The same state twice (the second one shared), then each part changed alone, then back.
        for (label, remaining, reset_ms, want) in [
            ("tenant", 39, 50, "\"tenant\";r=39;t=1"),
            ("tenant", 39, 50, "\"tenant\";r=39;t=1"),
            ("tenant", 38, 50, "\"tenant\";r=38;t=1"),
            ("tenant", 38, 1500, "\"tenant\";r=38;t=2"),
            ("tenant", 38, 2000, "\"tenant\";r=38;t=2"),
            ("client", 38, 2000, "\"client\";r=38;t=2"),
            ("tenant", 39, 50, "\"tenant\";r=39;t=1"),
            ("tenant", 0, 0, "\"tenant\";r=0;t=0"),
        ] {
            assert_eq!(ratelimit(label, remaining, reset_ms), want);
        }
    }
}
