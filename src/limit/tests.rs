//! The concurrency cap: its default, its bounded line, and its count across a reload.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;

fn limiter(
    limits: &Limits,
    previous: Option<&TenantLimits>,
    clock: &Arc<ManualClock>,
) -> TenantLimits {
    let clock = Arc::clone(clock) as Arc<dyn Clock>;
    TenantLimits::carrying("t", limits, None, clock, previous)
}

/// Acquires in a task and moves the manual clock past `queue_timeout` until it is answered.
async fn acquire_past_the_queue_timeout(l: &Arc<TenantLimits>, clock: &ManualClock) -> bool {
    let task = tokio::spawn({
        let l = Arc::clone(l);
        async move { l.acquire().await.map(drop).is_ok() }
    });
    for _ in 0..100 {
        if task.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
        clock.advance(Duration::from_millis(10));
    }
    task.await.unwrap()
}

#[tokio::test]
async fn without_max_concurrent_at_most_52_requests_are_in_flight() {
    let clock = Arc::new(ManualClock::new());
    let limits = Limits {
        queue_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let l = Arc::new(limiter(&limits, None, &clock));
    let mut slots = Vec::new();
    for _ in 0..52 {
        slots.push(l.acquire().await.unwrap());
    }
    assert!(
        !acquire_past_the_queue_timeout(&l, &clock).await,
        "the 53rd waits its queue_timeout, then 429"
    );
    drop(slots.pop());
    assert!(l.acquire().await.is_ok(), "a freed slot is taken again");
}

#[tokio::test]
async fn a_waiting_request_takes_the_next_freed_slot() {
    let clock = Arc::new(ManualClock::new());
    let limits = Limits {
        max_concurrent: Some(1),
        queue_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let l = Arc::new(limiter(&limits, None, &clock));
    let first = l.acquire().await.unwrap();
    let waiter = tokio::spawn({
        let l = Arc::clone(&l);
        async move { l.acquire().await.is_ok() }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    drop(first);
    assert!(waiter.await.unwrap());
}

#[tokio::test]
async fn a_rebuilt_limiter_counts_the_requests_its_predecessor_let_in() {
    let clock = Arc::new(ManualClock::new());
    let four = Limits {
        max_concurrent: Some(4),
        queue_timeout: Duration::from_millis(50),
        ..Limits::default()
    };
    let old = limiter(&four, None, &clock);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(old.acquire().await.unwrap());
    }
    let five = Limits {
        max_concurrent: Some(5),
        ..four
    };
    let new = Arc::new(limiter(&five, Some(&old), &clock));
    assert_eq!(new.in_flight(), 4);
    let fifth = new.acquire().await.unwrap();
    assert!(
        !acquire_past_the_queue_timeout(&new, &clock).await,
        "4 old + 1 new = the new cap of 5"
    );
    drop(held);
    assert_eq!(
        new.in_flight(),
        1,
        "old requests that end free the new limiter's slots"
    );
    drop(fifth);
    assert_eq!(new.in_flight(), 0);
}
