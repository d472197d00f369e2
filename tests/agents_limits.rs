//! A client's own cap on requests in flight (`limits.max_concurrent`), inside the tenant's: the
//! client's extra request waits in its own line and is refused after the queue timeout, while
//! another client of the same tenant goes through.

mod common;

use std::time::Duration;

use common::agents::{self, REPORT_KEY};
use common::*;
use dataverse_gateway::sim::SimConfig;

#[tokio::test]
async fn a_clients_in_flight_cap_holds_only_that_client() {
    let h = Harness::build(SimConfig::default(), |sim| {
        agents::register(sim);
        format!(
            "{}{}tenants:\n{}",
            agents::agent_auth_yaml(sim),
            agents::clients_yaml("{ max_concurrent: 1 }"),
            tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY)
        )
    })
    .await;
    let sales = agents::token(&h.sim, &agents::sales_agent()).await;
    h.sim.hold_responses();
    let get = |credential: String, path: &'static str| {
        let (http, url) = (h.http.clone(), h.api(path));
        tokio::spawn(async move { http.get(url).bearer_auth(credential).send().await.unwrap() })
    };
    let first = get(sales.clone(), "leads?$select=subject");
    h.upstream_reached(1).await;
    let mut second = get(sales.clone(), "leads?$select=subject");
    // Another client of the tenant is not held by the sales agent's cap.
    let other = get(REPORT_KEY.to_string(), "accounts?$select=name");
    h.upstream_reached(2).await;
    // The second sales request waits for its client's slot until the queue timeout (5 s).
    let refused = within("the second request to be refused", async {
        loop {
            h.clock.advance(Duration::from_secs(1));
            tokio::select! {
                r = &mut second => break r.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    })
    .await;
    assert_eq!(refused.status(), 429);
    let (code, message) = error_of(refused).await;
    assert_eq!(code, "GatewayRateLimited");
    assert!(
        message.contains("client sales-agent on tenant contoso has too many requests in flight"),
        "{message}"
    );
    assert_eq!(
        h.upstream_requests().len(),
        2,
        "the refused request never reached Dataverse"
    );
    h.sim.release_responses();
    assert_eq!(first.await.unwrap().status(), 200);
    assert_eq!(other.await.unwrap().status(), 200);
}
