//! The process-wide budget of request bodies held in memory (`limits.max_buffered_bytes`).
//!
//! Invariant: the bytes of all bodies the gateway buffers at once (bodies the policy must read)
//! never exceed the budget. A body is charged before its bytes are kept: its declared
//! `Content-Length` up front, or piece by piece as a chunked body arrives. A charge that does
//! not fit is refused at once (the caller answers 503 with `Retry-After`); nothing waits for
//! room. A [`Charge`] gives its bytes back when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The budget shared by every request of the process.
#[derive(Debug)]
pub struct Budget {
    max: AtomicU64,
    used: AtomicU64,
}

/// Bytes of one body counted against the budget until dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Budget {
    pub fn new(max: u64) -> Arc<Budget> {
        Arc::new(Budget {
            max: AtomicU64::new(max),
            used: AtomicU64::new(0),
        })
    }

    /// A new maximum (a reload); bodies already charged keep their bytes.
    pub fn set_max(&self, max: u64) {
        self.max.store(max, Ordering::Release);
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Acquire)
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// An empty charge to grow as a body arrives.
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    fn take(&self, n: u64) -> bool {
        let max = self.max();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= max)
            })
            .is_ok()
    }
}

impl Charge {
    /// Counts `n` more bytes; `false` (and nothing counted) when they do not fit.
    pub fn grow(&mut self, n: u64) -> bool {
        let fits = self.budget.take(n);
        if fits {
            self.bytes += n;
        }
        fits
    }

    /// Makes the charge exactly `n` bytes: grows it, or gives back what is over.
    pub fn settle(&mut self, n: u64) -> bool {
        if n > self.bytes {
            return self.grow(n - self.bytes);
        }
        self.budget.used.fetch_sub(self.bytes - n, Ordering::AcqRel);
        self.bytes = n;
        true
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_never_exceed_the_budget_and_come_back_when_dropped() {
        let b = Budget::new(100);
        let mut a = b.charge();
        assert!(a.grow(60));
        let mut c = b.charge();
        assert!(!c.grow(41), "60 + 41 is over 100");
        assert_eq!((b.used(), c.bytes()), (60, 0));
        assert!(c.grow(40));
        assert!(!b.charge().grow(1));
        drop(a);
        assert_eq!(b.used(), 40);
        assert!(
            c.settle(10),
            "a declared length over the real one is given back"
        );
        assert_eq!(b.used(), 10);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_lower_maximum_refuses_new_bytes_but_keeps_charged_ones() {
        let b = Budget::new(100);
        let mut a = b.charge();
        assert!(a.grow(80));
        b.set_max(50);
        assert!(!b.charge().grow(1));
        drop(a);
        assert!(b.charge().grow(50));
    }
}
