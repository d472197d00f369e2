//! Traffic control through the gateway: rate, concurrency, Dataverse throttling.
//!
//! Time that the gateway measures (rate, queue timeout, cooldown, retry delay) moves only with
//! the injected clock. Requests that must stay in flight are held by the simulator
//! (`hold_responses`) rather than delayed in real time, so no outcome depends on how fast the
//! machine is; arrivals at the simulator are awaited, never polled; every wait and every test
//! has a deadline (`within`, `TEST_DEADLINE`).

mod common;

use std::time::Duration;

use common::*;
use dataverse_gateway::sim::SimConfig;

/// The longest any test here may run.
const TEST_DEADLINE: Duration = Duration::from_secs(60);

fn policy_with(limits: &str) -> String {
    format!("{DEFAULT_POLICY}    limits:\n{limits}")
}

/// Runs a test body within [`TEST_DEADLINE`].
async fn bounded(test: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST_DEADLINE, test).await.is_err() {
        panic!("the test did not finish within {TEST_DEADLINE:?}");
    }
}

/// Advances the injected clock by `step` until `task` finishes; panics after [`DEADLINE`].
/// The gateway offers no event for "this request now waits on the clock", so each step gives
/// the task a moment to register its wait; the outcome does not depend on that moment.
async fn advance_until_done<T>(
    h: &Harness,
    step: Duration,
    task: &mut tokio::task::JoinHandle<T>,
) -> T {
    within("the request to finish as the clock advances", async {
        loop {
            h.clock.advance(step);
            if let Ok(done) = tokio::time::timeout(Duration::from_millis(5), &mut *task).await {
                return done.expect("the request task");
            }
        }
    })
    .await
}

#[tokio::test]
async fn offered_load_at_three_times_the_rate_is_admitted_at_the_rate() {
    bounded(offered_load()).await;
}

async fn offered_load() {
    let h = Harness::with_policy(&policy_with(
        "      requests_per_second: 20\n      burst: 20\n",
    ))
    .await;
    let (mut admitted, mut limited) = (0u32, 0u32);
    // 10 s of injected time at 60 requests/s
    for _ in 0..600 {
        let r = h.get("WhoAmI").await;
        let policy = r.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(policy, "\"tenant\";q=20;w=1");
        let state = r.headers()["ratelimit"].to_str().unwrap().to_string();
        match r.status().as_u16() {
            200 => admitted += 1,
            429 => {
                limited += 1;
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                assert!(state.starts_with("\"tenant\";r=0;t="), "{state}");
                assert_eq!(error_of(r).await.0, "GatewayRateLimited");
            }
            s => panic!("unexpected {s}"),
        }
        h.clock.advance(Duration::from_micros(16_667));
    }
    let allowance = 20.0 + 20.0 * 10.0;
    let error = (f64::from(admitted) - allowance).abs() / allowance;
    eprintln!(
        "admitted {admitted} of 600 (allowance {allowance}), limited {limited}, error {:.2}%",
        error * 100.0
    );
    assert!(error <= 0.02, "admitted {admitted}, allowance {allowance}");
    assert_eq!(
        h.upstream_requests().len(),
        admitted as usize,
        "limited requests never reach Dataverse"
    );
}

#[tokio::test]
async fn in_flight_requests_never_exceed_max_concurrent() {
    bounded(in_flight_capped()).await;
}

async fn in_flight_capped() {
    let h = Harness::with_policy(&policy_with("      max_concurrent: 4\n")).await;
    h.sim.hold_responses();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status().as_u16()
        }));
    }
    // four requests are held at the simulator at once: the cap is reached, not exceeded
    h.upstream_reached(4).await;
    assert_eq!(h.sim.max_in_flight(), 4);
    h.sim.release_responses();
    for t in tasks {
        let status = within("a queued request", t).await.unwrap();
        assert_eq!(status, 200, "waiting requests are served, not refused");
    }
    assert_eq!(h.upstream_requests().len(), 20);
    assert_eq!(h.sim.max_in_flight(), 4, "never more than max_concurrent");
}

#[tokio::test]
async fn a_full_queue_is_refused_with_429() {
    bounded(full_queue()).await;
}

async fn full_queue() {
    let h = Harness::with_policy(&policy_with(
        "      max_concurrent: 1\n      queue_timeout: 1s\n",
    ))
    .await;
    // the first request holds the only slot until the test releases it
    h.sim.hold_responses();
    let slow = {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
    };
    h.upstream_reached(1).await;
    // a second request waits; the injected clock passes its queue timeout
    let mut waiting = {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    let r = advance_until_done(&h, Duration::from_millis(200), &mut waiting).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_of(r).await.0, "GatewayRateLimited");
    assert_eq!(
        h.upstream_requests().len(),
        1,
        "the refused one never reached the org"
    );
    h.sim.release_responses();
    assert_eq!(within("the held request", slow).await.unwrap(), 200);
}

async fn two_tenants(limits: &str) -> Harness {
    let policy = format!("{DEFAULT_POLICY}    limits:\n{limits}");
    Harness::build(SimConfig::default(), |sim| {
        format!(
            "tenants:\n{}{}",
            tenant_yaml("contoso", true, sim, 0, &default_secret(), &policy),
            tenant_yaml("fabrikam", false, sim, 0, &default_secret(), DEFAULT_POLICY)
        )
    })
    .await
}

#[tokio::test]
async fn a_dataverse_429_pauses_the_tenant_for_its_retry_after() {
    bounded(cooldown()).await;
}

async fn cooldown() {
    let h = two_tenants("      max_concurrent: 8\n").await;
    h.sim.throttle_next(1, 2);
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 429, "Dataverse's own 429 is passed on");
    assert_eq!(h.upstream_requests().len(), 1);
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    assert_eq!(error_of(r).await.0, "GatewayRateLimited");
    assert_eq!(
        h.upstream_requests().len(),
        1,
        "nothing reaches Dataverse during the cooldown"
    );
    // another tenant is not affected
    let r = h
        .http
        .get(format!("{}/fabrikam/api/data/v9.2/WhoAmI", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.upstream_requests().len(), 2);
    h.clock.advance(Duration::from_secs(1));
    let r = h.get("WhoAmI").await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "1")
    );
    assert_eq!(h.upstream_requests().len(), 2);
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    assert_eq!(h.upstream_requests().len(), 3);
}

#[tokio::test]
async fn retry_throttled_makes_a_throttled_get_succeed() {
    bounded(retry_throttled()).await;
}

async fn retry_throttled() {
    let h = Harness::with_policy(&policy_with("      retry_throttled: { max_wait: 10s }\n")).await;
    h.sim.throttle_next(1, 2);
    let mut get = {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
    };
    h.upstream_reached(1).await;
    let status = advance_until_done(&h, Duration::from_millis(500), &mut get).await;
    assert_eq!(status, 200, "the agent never saw the 429");
    assert_eq!(
        h.upstream_requests().len(),
        2,
        "one throttled attempt, one retry"
    );
    // writes are never retried
    h.sim.throttle_next(1, 2);
    h.clock.advance(Duration::from_secs(30));
    let r = h
        .http
        .post(h.api("contacts"))
        .header("content-type", "application/json")
        .body(r#"{"firstname":"a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(h.upstream_requests().len(), 3);
}

#[tokio::test]
async fn declared_bodies_over_the_limit_are_413_even_when_streamed() {
    bounded(declared_bodies()).await;
}

async fn declared_bodies() {
    let h = Harness::with_policy(&policy_with("      max_body_bytes: 1KiB\n")).await;
    let r = h
        .http
        .put(h.api("contacts(c0000000-0000-4000-8000-000000000001)/fullname/$value"))
        .body("x".repeat(2048))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_of(r).await.0, "GatewayPayloadTooLarge");
    assert!(h.upstream_requests().is_empty());
}
