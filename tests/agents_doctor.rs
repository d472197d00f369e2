//! `doctor` checks that the application user may act as each client's mapped user: a known,
//! enabled user passes (WhoAmI answers that user); a missing or disabled one fails, named.

mod common;

use std::sync::Arc;

use common::{install_crypto_provider, simulator};
use dataverse_gateway::cli::doctor;
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::sim::SimConfig;

const ENABLED: &str = "0b1d0000-0000-4000-8000-000000000001";
const DISABLED: &str = "0b1d0000-0000-4000-8000-000000000002";
const MISSING: &str = "0b1d0000-0000-4000-8000-000000000003";

#[tokio::test]
async fn doctor_reports_each_mapped_user_that_cannot_be_acted_as() {
    install_crypto_provider();
    let sim = simulator(SimConfig::default()).await;
    let user = sim.register_user(ENABLED, false);
    sim.register_user(DISABLED, true);
    let client = |name: &str, oid: &str| {
        format!(
            "  - name: {name}\n    entra: {{ role: {name} }}\n    tenants: [contoso]\n    policy:\n      contoso:\n        act_as: {{ caller_object_id: {oid} }}\n"
        )
    };
    let app = &SimConfig::default().apps[0];
    let yaml = format!(
        "agent_auth:\n  tenant_id: {tid}\n  audience: api://dataverse-gateway\n  authority: {url}\nclients:\n{}{}{}tenants:\n  contoso:\n    dataverse:\n      url: {url}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n      client_secret: \"{secret}\"\n    allow:\n      contacts: [GET]\n    functions: [WhoAmI]\n",
        client("good", ENABLED),
        client("gone", MISSING),
        client("paused", DISABLED),
        url = sim.base_url(),
        tid = app.tenant_id,
        cid = app.client_id,
        secret = app.secret,
    );
    let (config, _) = dataverse_gateway::config::parse_str(&yaml, "t.yaml").unwrap();
    let reports = doctor::run(&config, None, Arc::new(SystemClock))
        .await
        .unwrap();
    let text = doctor::render(&reports);
    assert!(
        line_with(&text, "act as (good)").starts_with("  PASS")
            && text.contains(&format!("CallerObjectId {ENABLED} runs as UserId={user}")),
        "{text}"
    );
    assert!(
        line_with(&text, "act as (gone)").starts_with("  FAIL")
            && text.contains(&format!("no Dataverse user has Entra object id {MISSING}")),
        "{text}"
    );
    let paused = line_with(&text, "act as (paused)");
    assert!(
        paused.starts_with("  FAIL") && paused.contains("the user is disabled"),
        "{text}"
    );
    assert!(!reports[0].passed());
}

fn line_with<'t>(text: &'t str, needle: &str) -> &'t str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_default()
}
