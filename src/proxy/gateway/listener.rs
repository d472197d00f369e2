//! The agents' listener as the rest of the process sees it: open connections, the cap, and
//! whether accepting works. Process state kept in the [`Gateway`](super::Gateway) (the server
//! updates it, `/readyz` and `/metrics` read it), so it lives here, below the server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The agents' listener as the rest of the process sees it: open connections, the cap, and
/// whether new connections can be taken.
#[derive(Debug)]
pub struct Listener {
    open: AtomicUsize,
    cap: AtomicUsize,
    at_cap: AtomicBool,
    accept_failing: AtomicBool,
}

impl Listener {
    /// `max`: `limits.max_connections`; `None` derives the cap from the file limit.
    pub fn new(max: Option<u32>) -> Listener {
        let l = Listener {
            open: AtomicUsize::new(0),
            cap: AtomicUsize::new(0),
            at_cap: AtomicBool::new(false),
            accept_failing: AtomicBool::new(false),
        };
        l.set_cap(max);
        l
    }

    pub fn set_cap(&self, max: Option<u32>) {
        let cap = max.unwrap_or_else(|| {
            crate::config::default_max_connections(file_limit().unwrap_or(1024))
        });
        self.cap.store(cap as usize, Ordering::Release);
    }

    pub fn cap(&self) -> usize {
        self.cap.load(Ordering::Acquire)
    }

    /// Agent connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Why new agent connections cannot be served now, if they cannot (for `/readyz`).
    pub fn not_accepting(&self) -> Option<String> {
        if self.accept_failing.load(Ordering::Acquire) {
            return Some("the agents' listener cannot accept connections".into());
        }
        self.at_cap.load(Ordering::Acquire).then(|| {
            format!(
                "the agents' listener is at its cap of {} connections",
                self.cap()
            )
        })
    }

    /// Counts a new connection; `false` at the cap (logged once when the cap is reached).
    pub fn take(&self) -> bool {
        let cap = self.cap();
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok();
        if !taken && !self.at_cap.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                cap,
                "agent connections at the cap (limits.max_connections); new connections are refused with 503 until some close"
            );
        }
        taken
    }

    /// A counted connection closed.
    pub fn give_back(&self) {
        let open = self.open.fetch_sub(1, Ordering::AcqRel) - 1;
        // Leave the "at cap" state a tenth below the cap, so a full listener logs twice, not
        // once per connection.
        let cap = self.cap();
        let low = cap.saturating_sub((cap / 10).max(1));
        if open <= low && self.at_cap.swap(false, Ordering::AcqRel) {
            tracing::info!(
                open,
                cap,
                "agent connections below the cap again; accepting"
            );
        }
    }

    /// Whether `accept` is failing on the agents' listener (for `/readyz`).
    pub fn set_accept_failing(&self, failing: bool) {
        self.accept_failing.store(failing, Ordering::Release);
    }
}

/// The soft limit on open files (`RLIMIT_NOFILE`), from `/proc/self/limits` (Linux).
pub fn file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::from(u32::MAX)),
        n => n.parse().ok(),
    }
}
