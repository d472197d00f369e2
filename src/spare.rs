//! Allocations a thread's finished requests leave behind, kept for its next requests.
//!
//! A request that allocates something the size of the last request's (a header map, a list
//! of uses) can take that one back instead of asking the allocator, whose per-thread cache
//! does not hold blocks that large. Each kind lives in a `thread_local!` [`Spares`] of its own;
//! the caller decides what is worth keeping and empties it before [`Spares::give`].
//!
//! Guarantees: [`Spares::take`] returns only what was given on the same thread, last given
//! first; at most `keep` values are held per thread, a value given past that is dropped; on a
//! thread being torn down, `take` finds nothing and `give` drops its value (no panic).

use std::cell::RefCell;
use std::thread::LocalKey;

/// One thread's kept values of one kind.
pub struct Spares<T> {
    kept: RefCell<Vec<T>>,
    keep: usize,
}

impl<T: 'static> Spares<T> {
    /// A pool that keeps at most `keep` values.
    pub const fn new(keep: usize) -> Spares<T> {
        Spares {
            kept: RefCell::new(Vec::new()),
            keep,
        }
    }

    /// A value this thread kept in `pool`, if any.
    pub fn take(pool: &'static LocalKey<Spares<T>>) -> Option<T> {
        pool.try_with(|p| p.kept.borrow_mut().pop()).ok().flatten()
    }

    /// Keeps `value` in this thread's `pool`, unless it holds `keep` values already.
    pub fn give(pool: &'static LocalKey<Spares<T>>, value: T) {
        let _ = pool.try_with(|p| {
            let mut kept = p.kept.borrow_mut();
            if kept.len() < p.keep {
                kept.push(value);
            }
        });
    }

    /// How many values this thread's `pool` holds.
    pub fn len(pool: &'static LocalKey<Spares<T>>) -> usize {
        pool.try_with(|p| p.kept.borrow().len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static POOL: Spares<Vec<u8>> = const { Spares::new(2) };
    }

    #[test]
    fn keeps_at_most_its_bound_and_gives_back_the_last_first() {
        assert_eq!(Spares::take(&POOL), None);
        Spares::give(&POOL, vec![1]);
        Spares::give(&POOL, vec![2]);
        Spares::give(&POOL, vec![3]);
        assert_eq!(Spares::len(&POOL), 2);
        assert_eq!(Spares::take(&POOL), Some(vec![2]));
        assert_eq!(Spares::take(&POOL), Some(vec![1]));
        assert_eq!(Spares::take(&POOL), None);
    }

    #[test]
    fn another_thread_has_its_own() {
        Spares::give(&POOL, vec![1]);
        std::thread::spawn(|| assert_eq!(Spares::take(&POOL), None))
            .join()
            .expect("the other thread");
        assert_eq!(Spares::take(&POOL), Some(vec![1]));
    }
}
