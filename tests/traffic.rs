//! Traffic control through the gateway: rate, concurrency, Dataverse throttling.

mod common;

use std::time::Duration;

use common::*;
use dataverse_gateway::sim::SimConfig;

fn policy_with(limits: &str) -> String {
    format!("{DEFAULT_POLICY}    limits:\n{limits}")
}

#[tokio::test]
async fn offered_load_at_three_times_the_rate_is_admitted_at_the_rate() {
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
    let h = Harness::with_policy(&policy_with("      max_concurrent: 4\n")).await;
    h.sim.set_response_delay(Duration::from_millis(40));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            200,
            "waiting requests are served, not refused"
        );
    }
    assert!(
        h.sim.max_in_flight() <= 4,
        "{} in flight",
        h.sim.max_in_flight()
    );
    assert!(h.sim.max_in_flight() >= 2, "the test did overlap requests");
}

#[tokio::test]
async fn a_full_queue_is_refused_with_429() {
    let h = Harness::with_policy(&policy_with(
        "      max_concurrent: 1\n      queue_timeout: 1s\n",
    ))
    .await;
    h.sim.set_response_delay(Duration::from_millis(200));
    let slow = {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
    };
    while h.upstream_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // a second request waits; the injected clock passes its queue timeout
    let waiting = {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    for _ in 0..100 {
        if waiting.is_finished() {
            break;
        }
        h.clock.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let r = waiting.await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(slow.await.unwrap(), 200);
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
    let h = Harness::with_policy(&policy_with("      retry_throttled: { max_wait: 10s }\n")).await;
    h.sim.throttle_next(1, 2);
    let get = {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
    };
    while h.upstream_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for _ in 0..50 {
        if get.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        h.clock.advance(Duration::from_millis(500));
    }
    assert_eq!(get.await.unwrap(), 200, "the agent never saw the 429");
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
