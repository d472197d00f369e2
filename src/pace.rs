//! Yield points for long CPU-bound work done beside the event loop.
//!
//! On a gateway confined to one CPU, the kernel's fair scheduler now and then picks a runnable
//! low-priority thread over the event loop; once that thread runs, nothing takes the CPU back
//! before the next scheduler tick (4 ms at 250 Hz) unless the thread gives it up, and every
//! request in flight waits that long. So long work on such a thread (a reload parsing a CSDL of
//! tens of megabytes, and freeing the model it replaced) calls [`point`] between small steps
//! (or [`step`] between larger ones):
//! on a thread marked with [`paced`], a point gives the CPU up (`sched_yield`) once the thread
//! has run for the pace's slice since it last did. Elsewhere (the event loop, `check`, the
//! tests) a point costs a thread-local read and does nothing.
//!
//! Invariant: a point never changes what the work computes, only when its thread lets others
//! run. A yield with nothing else runnable returns at once, so an idle machine loses nothing.
//!
//! [`background`] makes a thread of its own fit for such work (a reload, a `$metadata` fetched
//! from the org): the lowest scheduling priority, so it runs in the time the event loop leaves,
//! and paced, so that when it does run it gives the CPU back within [`SLICE`].
//! [`drop_when_alone`] frees what such work replaced on that same thread, not on the event loop
//! of the last request to let go of it.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a paced thread runs between yields: short against a scheduler tick, long against
/// a yield's cost (a system call, and a context switch when something else is runnable).
pub const SLICE: Duration = Duration::from_micros(100);

/// Points between two looks at the clock: a point is a few dozen nanoseconds of work apart
/// from its neighbours, so the clock is read every few microseconds.
const POINTS_PER_LOOK: u32 = 64;

#[derive(Clone, Copy)]
struct Pace {
    slice: Duration,
    since: Instant,
    yields: u64,
}

thread_local! {
    static PACE: Cell<Option<Pace>> = const { Cell::new(None) };
    /// Points left before the next look; on a thread not paced, so many that a look (which
    /// finds no pace and starts over) almost never comes. Kept apart from [`PACE`] so that
    /// a point is a decrement of one thread-local counter.
    static COUNTDOWN: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// A step of long work is done (tens of nanoseconds, such as reading one XML event): on a
/// [`paced`] thread, yields the CPU if the slice is spent.
#[inline]
pub fn point() {
    advance(1);
}

/// A coarse step of long work is done (microseconds or more, such as freeing one entity type
/// of a large model): like [`point`], but looks at the clock every time.
#[inline]
pub fn step() {
    advance(POINTS_PER_LOOK);
}

#[inline]
fn advance(by: u32) {
    COUNTDOWN.with(|countdown| {
        let left = countdown.get();
        if left > by {
            countdown.set(left - by);
        } else {
            look(countdown);
        }
    });
}

#[cold]
fn look(countdown: &Cell<u32>) {
    PACE.with(|cell| {
        let Some(mut pace) = cell.get() else {
            countdown.set(u32::MAX);
            return;
        };
        countdown.set(POINTS_PER_LOOK);
        if pace.since.elapsed() >= pace.slice {
            std::thread::yield_now();
            pace.yields += 1;
            pace.since = Instant::now();
            cell.set(Some(pace));
        }
    });
}

/// Paces the calling thread at `slice` until the guard is dropped.
pub fn paced(slice: Duration) -> Paced {
    let before = PACE.with(|cell| {
        cell.replace(Some(Pace {
            slice,
            since: Instant::now(),
            yields: 0,
        }))
    });
    COUNTDOWN.with(|c| c.set(POINTS_PER_LOOK));
    Paced { before }
}

/// Makes the calling thread a background one: the lowest scheduling priority for good (nice
/// 19, Linux; elsewhere, or where that is refused, the thread keeps its priority), and paced at
/// [`SLICE`] for as long as the guard lives. For threads of their own, not pooled ones, which
/// would keep the low priority.
pub fn background() -> Paced {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "cannot lower a background thread's priority");
    }
    paced(SLICE)
}

/// Drops `value` on the calling thread as soon as `alone` says nothing else holds what it
/// refers to, polling every 5 ms for at most `wait`; then drops it anyway (the last holder
/// frees it, wherever it runs).
pub fn drop_when_alone<T>(value: T, alone: impl Fn(&T) -> bool, wait: Duration) {
    let deadline = Instant::now() + wait;
    while !alone(&value) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(value);
}

/// Whether the calling thread is paced, and at which slice (for tests).
#[cfg(test)]
pub fn slice() -> Option<Duration> {
    PACE.with(|cell| cell.get().map(|p| p.slice))
}

/// How many times the calling thread has yielded under its innermost pacing (for tests).
#[cfg(test)]
pub fn yields() -> u64 {
    PACE.with(|cell| cell.get().map_or(0, |p| p.yields))
}

/// Ends the pacing [`paced`] started (restoring the enclosing one, if any) when dropped.
#[must_use = "the thread is paced only while the guard lives"]
pub struct Paced {
    before: Option<Pace>,
}

impl Drop for Paced {
    fn drop(&mut self) {
        let restored = self.before.map(|p| Pace {
            since: Instant::now(),
            ..p
        });
        PACE.with(|cell| cell.set(restored));
        COUNTDOWN.with(|c| {
            c.set(if restored.is_some() {
                POINTS_PER_LOOK
            } else {
                u32::MAX
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_background_thread_runs_at_the_lowest_priority_paced_and_leaves_others_as_they_were() {
        use rustix::process::getpriority_process;
        use rustix::thread::gettid;
        let before = getpriority_process(Some(gettid())).unwrap();
        let (priority, pace) = std::thread::spawn(|| {
            let _background = background();
            (getpriority_process(Some(gettid())).unwrap(), slice())
        })
        .join()
        .unwrap();
        assert_eq!(priority, 19);
        assert_eq!(pace, Some(SLICE));
        assert_eq!(getpriority_process(Some(gettid())).unwrap(), before);
        assert_eq!(slice(), None);
    }

    /// Records the thread that drops it.
    struct DroppedOn(Arc<Mutex<Option<ThreadId>>>);

    impl Drop for DroppedOn {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(std::thread::current().id());
        }
    }

    #[test]
    fn what_work_replaced_is_freed_by_its_thread_once_others_let_go() {
        let dropped_on = Arc::new(Mutex::new(None));
        let value = Arc::new(DroppedOn(Arc::clone(&dropped_on)));
        // A request still holds it while the background thread waits.
        let request = Arc::clone(&value);
        let background = std::thread::spawn(move || {
            drop_when_alone(
                value,
                |v| Arc::strong_count(v) == 1,
                Duration::from_secs(60),
            );
            std::thread::current().id()
        });
        drop(request);
        let background = background.join().unwrap();
        assert_eq!(*dropped_on.lock().unwrap(), Some(background));
    }

    #[test]
    fn after_its_wait_the_background_thread_lets_the_last_holder_free_it() {
        let dropped_on = Arc::new(Mutex::new(None));
        let value = Arc::new(DroppedOn(Arc::clone(&dropped_on)));
        let request = Arc::clone(&value);
        std::thread::spawn(move || {
            drop_when_alone(value, |v| Arc::strong_count(v) == 1, Duration::ZERO)
        })
        .join()
        .unwrap();
        assert_eq!(
            *dropped_on.lock().unwrap(),
            None,
            "the request still holds it"
        );
        drop(request);
        assert_eq!(
            *dropped_on.lock().unwrap(),
            Some(std::thread::current().id())
        );
    }

    #[test]
    fn points_do_nothing_on_a_thread_not_paced() {
        assert_eq!(slice(), None);
        for _ in 0..1000 {
            point();
        }
        assert_eq!(slice(), None);
    }

    #[test]
    fn pacing_lasts_as_long_as_its_guard_and_nests() {
        std::thread::spawn(|| {
            let outer = paced(Duration::from_millis(1));
            assert_eq!(slice(), Some(Duration::from_millis(1)));
            {
                let _inner = paced(Duration::ZERO);
                assert_eq!(slice(), Some(Duration::ZERO));
                // A zero slice yields at every look at the clock; the work goes on.
                let mut sum = 0u64;
                for i in 0..10 * u64::from(POINTS_PER_LOOK) {
                    point();
                    sum += i;
                }
                assert_eq!(sum, (0..10 * u64::from(POINTS_PER_LOOK)).sum::<u64>());
                assert_eq!(yields(), 10);
                for _ in 0..5 {
                    step();
                }
                assert_eq!(yields(), 15, "a step looks at the clock every time");
            }
            assert_eq!(slice(), Some(Duration::from_millis(1)));
            assert_eq!(
                yields(),
                0,
                "the outer pacing's count, untouched by the inner"
            );
            drop(outer);
            assert_eq!(slice(), None);
        })
        .join()
        .expect("the paced thread ends");
    }
}
