//! Unit tests of the pure parts of the Entra simulation: request checks and encodings.

use super::*;

const BASE: &str = "http://127.0.0.1:4000";
const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000bb";

fn apps(expired: bool) -> Vec<SimApp> {
    vec![SimApp {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        secret: "sim-secret".into(),
        secret_expired: expired,
    }]
}

fn form(pairs: &[(&str, &str)]) -> Form {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::sim::form::encode(v)))
        .collect();
    Form::parse(body.join("&").as_bytes())
}

fn good() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", CLIENT),
        ("client_secret", "sim-secret"),
        ("scope", "http://127.0.0.1:4000/.default"),
        ("grant_type", "client_credentials"),
    ]
}

fn with(field: &'static str, value: &'static str) -> Form {
    let mut pairs: Vec<_> = good().into_iter().filter(|(k, _)| *k != field).collect();
    pairs.push((field, value));
    form(&pairs)
}

fn code(result: Result<usize, AadError>) -> (u16, &'static str, u32) {
    match result {
        Ok(_) => (200, "ok", 0),
        Err(e) => (e.status.as_u16(), e.error, e.code),
    }
}

#[test]
fn accepts_a_good_request() {
    assert_eq!(check(&apps(false), BASE, TENANT, &form(&good())), Ok(0));
    let upper = TENANT.to_uppercase();
    assert_eq!(
        check(
            &apps(false),
            BASE,
            &upper,
            &with("scope", "HTTP://127.0.0.1:4000//.default")
        ),
        Ok(0)
    );
}

#[test]
fn each_error_has_entras_code() {
    let a = apps(false);
    let other = "11111111-1111-1111-1111-111111111111";
    assert_eq!(
        code(check(&a, BASE, other, &form(&good()))),
        (400, "invalid_request", 90002)
    );
    assert_eq!(
        code(check(&a, BASE, TENANT, &with("client_id", other))),
        (400, "unauthorized_client", 700016)
    );
    assert_eq!(
        code(check(&a, BASE, TENANT, &with("client_secret", ""))),
        (401, "invalid_client", 7000218)
    );
    assert_eq!(
        code(check(&a, BASE, TENANT, &with("client_secret", "nope"))),
        (401, "invalid_client", 7000215)
    );
    assert_eq!(
        code(check(&apps(true), BASE, TENANT, &form(&good()))),
        (401, "invalid_client", 7000222)
    );
    let wrong_grant = with("grant_type", "password");
    assert_eq!(
        code(check(&a, BASE, TENANT, &wrong_grant)),
        (400, "unsupported_grant_type", 70003)
    );
    let bad_scope = with("scope", "http://127.0.0.1:4000/user_impersonation");
    assert_eq!(
        code(check(&a, BASE, TENANT, &bad_scope)),
        (400, "invalid_scope", 1002012)
    );
    let other_org = with("scope", "https://org.crm.dynamics.com/.default");
    assert_eq!(
        code(check(&a, BASE, TENANT, &other_org)),
        (400, "invalid_resource", 500011)
    );
    assert_eq!(
        code(check(&a, BASE, TENANT, &with("scope", ""))),
        (400, "invalid_request", 900144)
    );
}

#[test]
fn expired_secret_only_reported_for_the_right_secret() {
    let wrong = with("client_secret", "nope");
    assert_eq!(
        code(check(&apps(true), BASE, TENANT, &wrong)),
        (401, "invalid_client", 7000215)
    );
}

#[test]
fn base64url_matches_rfc4648_vectors() {
    assert_eq!(base64url(b""), "");
    assert_eq!(base64url(b"f"), "Zg");
    assert_eq!(base64url(b"fo"), "Zm8");
    assert_eq!(base64url(b"foo"), "Zm9v");
    assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}

#[test]
fn timestamps_use_entras_format() {
    assert_eq!(display_time(EPOCH_UNIX_SECS), "2025-01-01 00:00:00Z");
    assert_eq!(
        display_time(EPOCH_UNIX_SECS + 59 * 86_400 + 3_723),
        "2025-03-01 01:02:03Z"
    );
    assert_eq!(display_time(951_782_400), "2000-02-29 00:00:00Z");
}
