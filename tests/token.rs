//! Token lifecycle through the gateway: single flight, proactive refresh, Entra errors.

mod common;

use std::time::Duration;

use common::proc::{free_port, loopback};
use common::*;
use dataverse_gateway::sim::SimConfig;

async fn wait_for(mut condition: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn a_cold_cache_under_100_concurrent_requests_makes_one_token_request() {
    let h = Harness::start().await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (http, url) = (h.http.clone(), h.api("WhoAmI"));
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(h.sim.token_requests(), 1);
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_without_a_failed_request() {
    let h = Harness::start().await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    assert_eq!(h.sim.token_requests(), 1);
    // Walk through three token lifetimes (3599 s each) a minute at a time, always requesting.
    for minute in 1..=180 {
        h.clock.advance(Duration::from_secs(60));
        let r = h.get("WhoAmI").await;
        assert_eq!(r.status(), 200, "minute {minute}: {:?}", r.text().await);
    }
    // one refresh per lifetime, each made while the old token was still valid
    let n = h.sim.token_requests();
    assert!((3..=5).contains(&n), "{n} token requests");
    let rejected = h
        .upstream_requests()
        .iter()
        .filter(|r| r.uri.contains("WhoAmI"))
        .count();
    assert_eq!(rejected, 181);
}

#[tokio::test]
async fn the_refresh_happens_in_the_background_while_the_valid_token_serves() {
    let h = Harness::start().await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    let first = h.upstream_requests()[0].headers["authorization"].clone();
    // 56 minutes: inside the 5-minute refresh window, token still valid
    h.clock.advance(Duration::from_secs(56 * 60));
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    assert_eq!(
        h.upstream_requests()[1].headers["authorization"],
        first,
        "the valid token keeps serving"
    );
    wait_for(|| h.sim.token_requests() == 2).await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    let third = &h.upstream_requests()[2].headers["authorization"];
    assert_ne!(third, &first, "the refreshed token is used");
}

#[tokio::test]
async fn an_expired_token_is_never_sent() {
    let h = Harness::start().await;
    assert_eq!(h.get("WhoAmI").await.status(), 200);
    h.clock.advance(Duration::from_secs(2 * 3600));
    let r = h.get("WhoAmI").await;
    assert_eq!(
        r.status(),
        200,
        "a fresh token was fetched before forwarding"
    );
    assert_eq!(h.sim.token_requests(), 2);
}

#[tokio::test]
async fn a_wrong_secret_is_a_503_naming_aadsts7000215_without_the_secret() {
    let h = Harness::build(SimConfig::default(), |sim| {
        format!(
            "tenants:\n{}",
            tenant_yaml(
                "contoso",
                true,
                sim,
                0,
                "not-the-secret-xyz",
                DEFAULT_POLICY
            )
        )
    })
    .await;
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (code, message) = error_of(r).await;
    assert_eq!(code, "GatewayTokenUnavailable");
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert!(message.contains("wrong client secret"), "{message}");
    assert!(!message.contains("not-the-secret-xyz"), "{message}");
    assert!(h.upstream_requests().is_empty());
    // failures are not retried in a storm: the next request within the backoff reuses the error
    assert_eq!(h.get("WhoAmI").await.status(), 503);
    assert_eq!(h.sim.token_requests(), 1);
}

#[tokio::test]
async fn an_expired_secret_is_a_503_naming_aadsts7000222() {
    let mut sim = SimConfig::default();
    sim.apps[0].secret_expired = true;
    let h = Harness::build(sim, |sim| {
        format!(
            "tenants:\n{}",
            tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY)
        )
    })
    .await;
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 503);
    let (_, message) = error_of(r).await;
    assert!(
        message.contains("AADSTS7000222") && message.contains("expired"),
        "{message}"
    );
}

#[tokio::test]
async fn dataverse_unreachable_is_502() {
    let closed = loopback(free_port());
    let h = Harness::build(SimConfig::default(), |sim| {
        let yaml = tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY);
        let yaml = yaml.replacen(
            &format!("url: {}", sim.base_url()),
            &format!("url: http://{closed}"),
            1,
        );
        let scope = format!(
            "      scope: {}/.default\n      client_secret",
            sim.base_url()
        );
        let yaml = yaml.replacen("      client_secret", &scope, 1);
        format!("tenants:\n{yaml}")
    })
    .await;
    let r = h.get("WhoAmI").await;
    assert_eq!(r.status(), 502);
    let (code, message) = error_of(r).await;
    assert_eq!(code, "GatewayUpstreamError");
    assert!(message.contains("unreachable"), "{message}");
}
