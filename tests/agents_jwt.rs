//! Agent tokens: the validation table. Every refused token gets 401 `GatewayUnauthorized` with
//! its reason, before routing: nothing reaches the org, and the token appears in no answer.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::agents::{self, AGENT_TENANT, AUDIENCE};
use common::*;
use dataverse_gateway::sim::SimConfig;
use serde_json::{Value, json};

async fn started() -> Harness {
    Harness::build(SimConfig::default(), |sim| {
        agents::register(sim);
        agents::gateway_yaml(sim)
    })
    .await
}

/// Sends WhoAmI with `token`; returns (status, error code, message).
async fn whoami(h: &Harness, token: &str) -> (u16, String, String) {
    let r = h
        .http
        .get(h.api("WhoAmI"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        return (200, String::new(), String::new());
    }
    let (code, message) = error_of(r).await;
    assert!(!message.contains(token), "the token is echoed");
    (status, code, message)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `token` with its header replaced (the signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let mut parts = token.splitn(2, '.');
    parts.next();
    format!("{}.{}", b64(header), parts.next().unwrap())
}

#[tokio::test]
async fn the_token_table() {
    let h = started().await;
    let sales = agents::sales_agent();
    let good = agents::token(&h.sim, &sales).await;
    assert_eq!(whoami(&h, &good).await.0, 200, "a valid token");
    assert_eq!(h.sim.agent_key_requests(), 1, "keys fetched on first use");
    h.sim.clear_requests();

    let base = h.sim.agent_claims(&sales, AUDIENCE);
    let now = base["iat"].as_u64().unwrap();
    let claims = |edit: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        edit(&mut c);
        h.sim.sign_agent_token(&c)
    };
    let (kid, n, _) = h.sim.agent_key();
    let other_tid = "0e0e0000-0000-4000-8000-000000000000";
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &n);
    let hs_header = b64(&json!({"alg": "HS256", "kid": kid, "typ": "JWT"}));
    let hs_input = format!("{hs_header}.{}", b64(&base));
    let hs_sig = aws_lc_rs::hmac::sign(&hmac_key, hs_input.as_bytes());
    let mut tampered: Vec<&str> = good.split('.').collect();
    let mut richer = base.clone();
    richer["roles"] = json!(["Gateway.Admin"]);
    let richer = b64(&richer);
    tampered[1] = &richer;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            claims(&|c| c["exp"] = json!(now - 3600)),
            "has expired",
        ),
        (
            "not yet valid",
            claims(&|c| c["nbf"] = json!(now + 3600)),
            "not valid yet",
        ),
        (
            "wrong aud",
            claims(&|c| c["aud"] = json!("api://other")),
            "another audience",
        ),
        (
            "wrong iss",
            claims(&|c| c["iss"] = json!(format!("https://evil.example/{AGENT_TENANT}/v2.0"))),
            "issuer",
        ),
        (
            "wrong tid",
            claims(&|c| c["tid"] = json!(other_tid)),
            "another Entra tenant",
        ),
        (
            "another tenant's gateway",
            claims(&|c| {
                c["tid"] = json!(other_tid);
                c["iss"] = json!(format!("{}/{other_tid}/v2.0", h.sim.base_url()));
                c["aud"] = json!("api://their-gateway");
            }),
            "another Entra tenant",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&base)
            ),
            "`none` is not accepted",
        ),
        (
            "HS256 with the public key",
            format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(hs_sig.as_ref())),
            "`HS256` is not accepted",
        ),
        (
            "tampered payload",
            tampered.join("."),
            "signature is not valid",
        ),
    ];
    for (what, token, reason) in &cases {
        let (status, code, message) = whoami(&h, token).await;
        assert_eq!(status, 401, "{what}: {message}");
        assert_eq!(code, "GatewayUnauthorized", "{what}");
        assert!(message.contains(reason), "{what}: {message}");
    }
    assert!(h.upstream_requests().is_empty(), "nothing reached the org");
    assert_eq!(h.sim.agent_key_requests(), 1, "known kids fetch nothing");
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_keys_at_most_once_a_minute() {
    let h = started().await;
    let sales = agents::sales_agent();
    let good = agents::token(&h.sim, &sales).await;
    assert_eq!(whoami(&h, &good).await.0, 200);
    let fetched = h.sim.agent_key_requests();
    h.clock.advance(std::time::Duration::from_secs(61));
    h.sim.clear_requests();
    let unknown = with_header(
        &good,
        &json!({"alg": "RS256", "kid": "not-a-key", "typ": "JWT"}),
    );
    for _ in 0..3 {
        let (status, code, message) = whoami(&h, &unknown).await;
        assert_eq!((status, code.as_str()), (401, "GatewayUnauthorized"));
        assert!(message.contains("unknown signer"), "{message}");
    }
    assert_eq!(
        h.sim.agent_key_requests(),
        fetched + 1,
        "one refresh, then none"
    );
    assert!(h.upstream_requests().is_empty());

    // The issuer rolls its key: tokens with the new kid are refused until a minute has passed
    // since the last fetch, then the keys are fetched again and they are accepted.
    h.sim.rotate_agent_key();
    let rolled = agents::token(&h.sim, &sales).await;
    assert_eq!(whoami(&h, &rolled).await.0, 401);
    h.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(whoami(&h, &rolled).await.0, 200);
    assert_eq!(h.sim.agent_key_requests(), fetched + 2);
    // Still cached by its hash until exp: the old key's token is accepted without a lookup.
    assert_eq!(whoami(&h, &good).await.0, 200);
}

#[tokio::test]
async fn a_valid_token_of_no_client_is_403_and_v1_tokens_map_by_role() {
    let h = started().await;
    let stranger = agents::token(&h.sim, &agents::stranger()).await;
    let (status, code, message) = whoami(&h, &stranger).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "GatewayPolicyDenied"),
        "{message}"
    );
    assert!(
        message.contains("not a client of this gateway"),
        "{message}"
    );
    assert!(h.upstream_requests().is_empty());
    let support = agents::token(&h.sim, &agents::support_agent()).await;
    let r = h
        .http
        .get(h.api("contacts?$select=fullname"))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a v1 token mapped by its app role");
}

#[tokio::test]
async fn a_reload_keeps_the_keys_and_applies_a_new_audience() {
    let h = started().await;
    let good = agents::token(&h.sim, &agents::sales_agent()).await;
    assert_eq!(whoami(&h, &good).await.0, 200);
    let yaml = agents::gateway_yaml(&h.sim);
    let (same, _) = dataverse_gateway::config::parse_str(&yaml, "same.yaml").unwrap();
    h.gateway.swap(same).unwrap();
    assert_eq!(whoami(&h, &good).await.0, 200);
    assert_eq!(
        h.sim.agent_key_requests(),
        1,
        "the validator and its keys survive the reload"
    );
    let moved = yaml.replace(
        &format!("audience: {AUDIENCE}"),
        "audience: api://another-gateway",
    );
    let (moved, _) = dataverse_gateway::config::parse_str(&moved, "moved.yaml").unwrap();
    h.gateway.swap(moved).unwrap();
    let (status, _, message) = whoami(&h, &good).await;
    assert_eq!(
        status, 401,
        "a cached acceptance does not outlive its audience"
    );
    assert!(message.contains("another audience"), "{message}");
}
