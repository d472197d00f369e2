//! Failing dependencies: a Dataverse stream that stalls or breaks off, a token endpoint that
//! never answers, and a storm of reloads. Each test asserts its bound against real but SHORT
//! timeouts, and every wait in a test has a deadline.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::client;
use common::hostile::*;
use dataverse_gateway::telemetry::metrics::ErrorLabels;

#[tokio::test]
async fn a_stalled_upstream_stream_ends_within_the_idle_timeout_and_frees_its_slot() {
    let gw = start(TIMEOUTS, 2).await;
    let started = Instant::now();
    // One agent on HTTP/1.1 (the connection closes without the final chunk), one on HTTP/2
    // (the stream is reset).
    let reads = (0..2).map(|i| {
        let url = format!("{}/accounts", gw.url);
        tokio::spawn(async move {
            let agent = match i {
                0 => client(),
                _ => reqwest::Client::builder()
                    .no_proxy()
                    .http2_prior_knowledge()
                    .build()
                    .unwrap(),
            };
            let mut r = agent.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let h2 = r.version() == reqwest::Version::HTTP_2;
            assert_eq!(h2, i == 1);
            let mut failed = false;
            loop {
                match r.chunk().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            failed
        })
    });
    let ended = tokio::time::timeout(Duration::from_secs(3), all(reads.collect()))
        .await
        .expect("the streams end");
    assert_eq!(
        ended,
        vec![true, true],
        "each ends as an error, not as a complete body"
    );
    assert!(started.elapsed() < Duration::from_millis(300 + 1500));
    assert_eq!(gw.gateway.snapshot().tenants[0].limits.in_flight(), 0);
    gw.served().await;
    let audit = gw.audit();
    let stalled: Vec<_> = audit
        .iter()
        .filter(|r| r["error"] == "GatewayUpstreamStalled")
        .collect();
    assert_eq!(stalled.len(), 2, "{audit:?}");
    assert_eq!(stalled[0]["completed"], false);
    assert_eq!(stalled[0]["status"], 200);
    let labels = ErrorLabels {
        tenant: "contoso".into(),
        code: "GatewayUpstreamStalled",
    };
    assert_eq!(
        gw.gateway
            .metrics
            .upstream_body_errors
            .get_or_create(&labels)
            .get(),
        2
    );
}

#[tokio::test]
async fn a_truncated_upstream_body_is_recorded_unlike_an_agent_that_went_away() {
    let gw = start(TIMEOUTS, 2).await;
    let mut r = client()
        .get(format!("{}/leads", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut failed = false;
    let read = async {
        loop {
            match r.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), read)
        .await
        .unwrap();
    assert!(failed, "the agent can tell: no terminating chunk");
    // An agent that hangs up mid-stream.
    let gone = client()
        .get(format!("{}/accounts", gw.url))
        .send()
        .await
        .unwrap();
    drop(gone);
    let audit = async {
        loop {
            let audit = gw.audit();
            if audit.len() >= 2 {
                return audit;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let audit = tokio::time::timeout(Duration::from_secs(3), audit)
        .await
        .unwrap();
    let leads = audit
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("/leads"))
        .unwrap();
    assert_eq!(leads["error"], "GatewayUpstreamTruncated", "{leads}");
    assert_eq!(leads["completed"], false);
    let accounts = audit
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("/accounts"))
        .unwrap();
    assert_eq!(accounts["error"], serde_json::Value::Null, "{accounts}");
    assert_eq!(accounts["completed"], false);
    let labels = ErrorLabels {
        tenant: "contoso".into(),
        code: "GatewayUpstreamTruncated",
    };
    assert_eq!(
        gw.gateway
            .metrics
            .upstream_body_errors
            .get_or_create(&labels)
            .get(),
        1
    );
}

#[tokio::test]
async fn with_the_token_endpoint_hanging_requests_get_503_fast() {
    let upstream_hangs = start(TIMEOUTS, 4).await;
    let gw = upstream_hangs;
    gw.upstream.state.hang_tokens.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        client().get(format!("{}/contacts", gw.url)).send(),
    )
    .await
    .expect("answered, not left waiting for the token")
    .unwrap();
    assert_eq!(r.status(), 503);
    let first = started.elapsed();
    assert!(first < Duration::from_millis(300 + 1200), "{first:?}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "GatewayTokenUnavailable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has not been answered")
    );
    // Later requests do not queue behind the hanging fetch.
    for _ in 0..5 {
        let started = Instant::now();
        let r = client()
            .get(format!("{}/contacts", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    assert_eq!(
        gw.upstream.state.token_requests.load(Ordering::SeqCst),
        1,
        "single flight"
    );
}

#[tokio::test]
async fn a_reload_storm_never_lets_more_than_the_cap_reach_the_org() {
    let head = "timeouts:\n  request_head: 5s\n";
    let gw = start(head, 3).await;
    gw.upstream.state.delay_ms.store(30, Ordering::SeqCst);
    gw.served().await;
    let requests: Vec<_> = (0..60)
        .map(|_| {
            let url = format!("{}/contacts", gw.url);
            tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for i in 0..100 {
        // The cap alternates between 3 and 2, and the rate settings change too.
        let cap = if i % 2 == 0 { 2 } else { 3 };
        let text = gw
            .yaml
            .replace("max_concurrent: 3", &format!("max_concurrent: {cap}"));
        gw.gateway.swap(parse(&text)).unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let statuses = tokio::time::timeout(Duration::from_secs(20), all(requests))
        .await
        .unwrap();
    let ok = statuses
        .into_iter()
        .filter(|s| matches!(s, Ok(200)))
        .count();
    assert!(ok > 0);
    let max = gw.upstream.state.max_in_flight.load(Ordering::SeqCst);
    assert!(
        max <= 3,
        "{max} requests reached the org at once; the cap is at most 3"
    );
}
