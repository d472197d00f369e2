//! The hardened token lifecycle through the gateway, on paused (manual) time: outages of the
//! token endpoint, a forced expiry under load, throttling, a Dataverse 401, shared sources.

mod common;

use std::time::Duration;

use common::*;
use dataverse_gateway::sim::SimConfig;

async fn status(h: &Harness) -> u16 {
    h.get("WhoAmI").await.status().as_u16()
}

#[tokio::test]
async fn an_outage_across_the_refresh_point_serves_the_valid_token_until_expiry_then_503_then_recovers()
 {
    let h = Harness::start().await;
    assert_eq!(status(&h).await, 200);
    h.sim.set_token_endpoint_down(true);
    // Past every possible refresh point (75-85% of 3599 s), the token still valid.
    let mut at = 0;
    for minute in [46, 50, 52, 55, 58] {
        h.clock.advance(Duration::from_secs(60 * minute - at));
        at = 60 * minute;
        assert_eq!(status(&h).await, 200, "minute {minute}");
    }
    assert!(
        h.sim.token_requests() >= 2,
        "refreshes were attempted during the outage"
    );
    // 59:30: within a minute of expiry, no valid token is left.
    h.clock.advance(Duration::from_secs(90));
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (code, _) = error_of(r).await;
    assert_eq!(code, "GatewayTokenUnavailable");
    // Recovery: after the failure backoff the next request gets a new token.
    h.sim.set_token_endpoint_down(false);
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(status(&h).await, 200);
}

#[tokio::test]
async fn a_forced_expiry_under_1000_concurrent_requests_makes_one_token_request() {
    let h = Harness::start().await;
    assert_eq!(status(&h).await, 200);
    assert_eq!(h.sim.token_requests(), 1);
    h.clock.advance(Duration::from_secs(2 * 3600));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.map(|r| r.status().as_u16())
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if t.await.unwrap().ok() != Some(200) {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "failed requests");
    assert_eq!(
        h.sim.token_requests(),
        2,
        "one token request for the refresh"
    );
}

#[tokio::test]
async fn a_plain_text_429_is_obeyed_for_its_retry_after() {
    let h = Harness::start().await;
    h.sim.throttle_token_endpoint(1, 120);
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (_, message) = error_of(r).await;
    assert!(message.contains("retry after 120"), "{message}");
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(status(&h).await, 503, "still inside Retry-After");
    assert_eq!(h.sim.token_requests(), 1, "no request before Retry-After");
    h.clock.advance(Duration::from_secs(90));
    assert_eq!(status(&h).await, 200);
    assert_eq!(h.sim.token_requests(), 2);
}

#[tokio::test]
async fn a_dataverse_401_drops_the_token_and_retries_once_with_a_new_one() {
    let h = Harness::start().await;
    assert_eq!(status(&h).await, 200);
    h.sim.revoke_tokens();
    assert_eq!(status(&h).await, 200, "retried with a fresh token");
    assert_eq!(h.sim.token_requests(), 2);
    assert_eq!(h.upstream_requests().len(), 3, "original, refused, retried");
}

#[tokio::test]
async fn a_request_with_a_body_is_not_retried_after_a_401_but_the_token_is_dropped() {
    let h = Harness::start().await;
    assert_eq!(status(&h).await, 200);
    h.sim.revoke_tokens();
    let r = h
        .http
        .post(h.api("contacts"))
        .header("content-type", "application/json")
        .body(r#"{"firstname":"Ada"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(status(&h).await, 200, "the next request uses a new token");
    assert_eq!(h.sim.token_requests(), 2);
}

#[tokio::test]
async fn tenants_with_the_same_app_and_scope_share_one_token() {
    let h = Harness::build(SimConfig::default(), |sim| {
        format!(
            "tenants:\n{}{}",
            tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY),
            tenant_yaml(
                "contoso-eu",
                false,
                sim,
                0,
                &default_secret(),
                DEFAULT_POLICY
            ),
        )
    })
    .await;
    assert_eq!(status(&h).await, 200);
    let r = h
        .http
        .get(format!("{}/contoso-eu/api/data/v9.2/WhoAmI", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.sim.token_requests(), 1);
}
