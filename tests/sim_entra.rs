//! The simulator's Entra ID side over real HTTP: token issuance in Entra's shape, errors with
//! AADSTS codes, token expiry on a manual clock, and requests recorded before authentication.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::sim_client::{SimClient, good_fields};
use dataverse_gateway::clock::ManualClock;
use dataverse_gateway::sim::{DEFAULT_TENANT_ID, SimApp, SimConfig};
use http::{Method, StatusCode};

#[tokio::test]
async fn issues_tokens_in_entras_shape() {
    let config = SimConfig {
        refresh_in: Some(Duration::from_secs(1800)),
        ..SimConfig::default()
    };
    let h = SimClient::start(config).await;
    let scope = h.sim.scope();
    let reply = h.token_with(DEFAULT_TENANT_ID, &good_fields(&scope)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("content-type").starts_with("application/json"));
    let json = reply.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_in"], 3599);
    assert_eq!(json["ext_expires_in"], 3599);
    assert_eq!(json["refresh_in"], 1800);
    let token = json["access_token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    );
    assert_eq!(h.sim.token_requests(), 1);
    assert!(
        h.sim.requests().is_empty(),
        "token requests are not Dataverse requests"
    );
}

#[tokio::test]
async fn token_errors_carry_aadsts_codes() {
    let other_tenant = "11111111-1111-1111-1111-111111111111";
    let mut config = SimConfig::default();
    config.apps.push(SimApp {
        tenant_id: other_tenant.into(),
        client_id: "expired-app".into(),
        secret: "old".into(),
        secret_expired: true,
    });
    let h = SimClient::start(config).await;
    let scope = h.sim.scope();
    let with = |field: &'static str, value: &'static str| {
        let mut fields: Vec<(&str, &str)> = good_fields(&scope)
            .into_iter()
            .filter(|(k, _)| *k != field)
            .collect();
        if !value.is_empty() {
            fields.push((field, value));
        }
        fields
    };
    let expired = vec![
        ("client_id", "expired-app"),
        ("client_secret", "old"),
        ("scope", scope.as_str()),
        ("grant_type", "client_credentials"),
    ];
    /// Tenant, form fields, then the expected status, `error` and AADSTS code.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            "22222222-2222-2222-2222-222222222222",
            good_fields(&scope),
            400,
            "invalid_request",
            90002,
        ),
        (
            DEFAULT_TENANT_ID,
            with("client_id", "unknown-app"),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            DEFAULT_TENANT_ID,
            with("client_secret", ""),
            401,
            "invalid_client",
            7000218,
        ),
        (
            DEFAULT_TENANT_ID,
            with("client_secret", "wrong"),
            401,
            "invalid_client",
            7000215,
        ),
        (other_tenant, expired, 401, "invalid_client", 7000222),
        (
            DEFAULT_TENANT_ID,
            with("grant_type", "authorization_code"),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            DEFAULT_TENANT_ID,
            with("scope", "https://x.crm.dynamics.com/read"),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            DEFAULT_TENANT_ID,
            with("scope", "https://x.crm.dynamics.com/.default"),
            400,
            "invalid_resource",
            500011,
        ),
    ];
    let count = cases.len();
    for (tenant, fields, status, error, code) in cases {
        let reply = h.token_with(tenant, &fields).await;
        assert_eq!(reply.status.as_u16(), status, "{error} {code}");
        let json = reply.json();
        assert_eq!(json["error"], error);
        assert_eq!(json["error_codes"][0], code);
        let description = json["error_description"].as_str().expect("description");
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        assert!(description.contains("\r\nTrace ID: "), "{description}");
        for field in ["timestamp", "trace_id", "correlation_id"] {
            assert!(json[field].is_string(), "{field}");
        }
    }
    assert_eq!(h.sim.token_requests(), count);
}

#[tokio::test]
async fn expired_tokens_are_rejected_by_the_clock() {
    let clock = Arc::new(ManualClock::new());
    let config = SimConfig {
        clock: clock.clone(),
        ..SimConfig::default()
    };
    let h = SimClient::start(config).await;
    let token = h.token().await;
    let reply = h.get("WhoAmI()", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["UserId"], h.sim.app_user_id(0));

    clock.advance(Duration::from_secs(3598));
    assert_eq!(h.get("WhoAmI", &token).await.status, StatusCode::OK);
    clock.advance(Duration::from_secs(2));
    let reply = h.get("WhoAmI", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let base = h.sim.base_url();
    let challenge = format!(
        "Bearer authorization_uri={base}/{DEFAULT_TENANT_ID}/oauth2/authorize, resource_id={base}/"
    );
    assert_eq!(reply.header("www-authenticate"), challenge);
    assert!(reply.json()["error"]["code"].is_string());
}

#[tokio::test]
async fn requests_are_recorded_before_authentication() {
    let h = SimClient::start(SimConfig::default()).await;
    let reply = h
        .send(
            Method::POST,
            &h.url("contacts?x=1"),
            &[("x-probe", "1")],
            "{\"a\":1}",
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("odata-version"), "4.0");
    let forged = h.get("contacts", "not-a-token").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let recorded = h.sim.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].method, Method::POST);
    assert_eq!(recorded[0].uri, "/api/data/v9.2/contacts?x=1");
    assert_eq!(recorded[0].headers["x-probe"], "1");
    assert_eq!(&recorded[0].body[..], b"{\"a\":1}");
    h.sim.clear_requests();
    assert!(h.sim.requests().is_empty());
}
