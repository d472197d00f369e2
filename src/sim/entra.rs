//! The simulated Entra ID token endpoint: `POST /{tenant}/oauth2/v2.0/token` with the client
//! credentials grant and a client secret.
//!
//! [`check`] is the pure decision (which app, or which AADSTS error); [`token`] is the shell that
//! issues and remembers the token. Checks run in this order: tenant (90002), required fields
//! (900144), grant type (70003), client id (700016), scope suffix (1002012), scope resource
//! (500011; Key Vault's resource is known too, and gets a token the simulated vault accepts),
//! credential (7000218 missing, 7000215 wrong, 7000222 expired; a client assertion is
//! verified by `assertion`, which [`check_with`] takes as a function). Tenant and client ids compare
//! case-insensitively. Timestamps shown to clients are a fixed 2025-01-01T00:00:00Z plus the
//! time elapsed on the injected clock, so they are deterministic.

use std::time::Duration;

use http::{Response, StatusCode};
use serde_json::json;

use super::form::Form;
use super::response::{SimBody, with_body};
use super::state::{Issued, Shared};
use super::{SimApp, seed};

/// 2025-01-01T00:00:00Z, the simulator's wall-clock origin.
const EPOCH_UNIX_SECS: u64 = 1_735_689_600;

/// An Entra error: HTTP status, `error`, the AADSTS number and its text.
#[derive(Debug, PartialEq, Eq)]
pub struct AadError {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub text: String,
}

pub fn err(status: StatusCode, error: &'static str, code: u32, text: String) -> AadError {
    AadError {
        status,
        error,
        code,
        text,
    }
}

fn missing(field: &str) -> AadError {
    let text = format!("The request body must contain the following parameter: '{field}'.");
    err(StatusCode::BAD_REQUEST, "invalid_request", 900144, text)
}

/// Decides a token request: the index of the authenticated app, or the error Entra would send.
/// Client assertions are refused (700027); [`check_with`] verifies them.
#[cfg(test)]
pub fn check(
    apps: &[SimApp],
    base_url: &str,
    tenant: &str,
    form: &Form,
) -> Result<usize, AadError> {
    check_with(apps, base_url, tenant, form, |_| {
        let text = "Client assertion failed signature validation.".to_string();
        Err(err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            text,
        ))
    })
}

/// [`check`], with `assertion(app)` deciding a client assertion once the app is known.
pub fn check_with(
    apps: &[SimApp],
    base_url: &str,
    tenant: &str,
    form: &Form,
    assertion: impl FnOnce(usize) -> Result<(), AadError>,
) -> Result<usize, AadError> {
    if !apps
        .iter()
        .any(|a| a.tenant_id.eq_ignore_ascii_case(tenant))
    {
        let text = format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing \
             into the correct cloud. Check with your subscription administrator, this may happen if there are \
             no active subscriptions for the tenant."
        );
        return Err(err(StatusCode::BAD_REQUEST, "invalid_request", 90002, text));
    }
    let grant = form
        .get("grant_type")
        .ok_or_else(|| missing("grant_type"))?;
    let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
    if grant != "client_credentials" {
        let text = format!("The app requested an unsupported grant type '{grant}'.");
        return Err(err(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            text,
        ));
    }
    let found = apps.iter().position(|a| {
        a.tenant_id.eq_ignore_ascii_case(tenant) && a.client_id.eq_ignore_ascii_case(client_id)
    });
    let Some(index) = found else {
        let text = format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can \
             happen if the application has not been installed by the administrator of the tenant or consented \
             to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        );
        return Err(err(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            text,
        ));
    };
    let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
    let Some(resource) = scope.strip_suffix("/.default") else {
        let text = format!(
            "The provided value for scope {scope} is not valid. Client credential flows must have a scope \
             value with /.default suffixed to the resource identifier (application ID URI)."
        );
        return Err(err(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, text));
    };
    let vault = super::vault::is_vault_resource(resource);
    if !vault
        && !resource
            .trim_end_matches('/')
            .eq_ignore_ascii_case(base_url.trim_end_matches('/'))
    {
        let text = format!(
            "The resource principal named {resource} was not found in the tenant named {tenant}. This can \
             happen if the application has not been installed by the administrator of the tenant or consented \
             to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        );
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            text,
        ));
    }
    if form.get("client_secret").is_none() && form.get("client_assertion").is_some() {
        assertion(index)?;
    } else {
        check_secret(&apps[index], form)?;
    }
    Ok(index)
}

fn check_secret(app: &SimApp, form: &Form) -> Result<(), AadError> {
    let unauthorized = |code, text| err(StatusCode::UNAUTHORIZED, "invalid_client", code, text);
    let Some(secret) = form.get("client_secret") else {
        let text = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.";
        return Err(unauthorized(7000218, text.into()));
    };
    if secret != app.secret {
        let text = format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
             value, not the client secret ID, for a secret added to app '{}'.",
            app.client_id
        );
        return Err(unauthorized(7000215, text));
    }
    if app.secret_expired {
        let text = format!(
            "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys \
             for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added \
             security: https://aka.ms/certCreds.",
            app.client_id
        );
        return Err(unauthorized(7000222, text));
    }
    Ok(())
}

/// Handles one token request body for `tenant`.
pub fn token(shared: &Shared, tenant: &str, body: &[u8]) -> Response<SimBody> {
    let form = Form::parse(body);
    if let Some(refused) = super::credentials::token_endpoint_fault(shared) {
        return refused;
    }
    let assertion = |app| super::assertion::verify(shared, tenant, app, &form);
    let apps = super::credentials::apps_now(shared);
    let for_vault = form
        .get("scope")
        .and_then(|s| s.strip_suffix("/.default"))
        .is_some_and(super::vault::is_vault_resource);
    match check_with(&apps, &shared.base_url, tenant, &form, assertion) {
        Ok(app) if for_vault => issue_for_vault(shared, app),
        Ok(app) => issue(shared, tenant, app),
        Err(e) => error_response(shared, &e),
    }
}

fn issue(shared: &Shared, tenant: &str, app: usize) -> Response<SimBody> {
    let access_token = mint(shared, tenant, app);
    let lifetime = shared.token_lifetime.as_secs();
    let mut body = json!({
        "token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token,
    });
    if let Some(refresh_in) = shared.refresh_in {
        body["refresh_in"] = json!(refresh_in.as_secs());
    }
    entra_json(StatusCode::OK, body.to_string())
}

/// A Key Vault token (scope `https://vault.azure.net/.default`) for app number `app`.
fn issue_for_vault(shared: &Shared, app: usize) -> Response<SimBody> {
    let lifetime = shared.token_lifetime.as_secs();
    let access_token = super::vault::mint(shared, app);
    let body = json!({
        "token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token,
    });
    entra_json(StatusCode::OK, body.to_string())
}

/// Creates and remembers a Dataverse access token for app number `app`.
pub fn mint(shared: &Shared, tenant: &str, app: usize) -> String {
    let now_unix = unix_now(shared);
    let lifetime = shared.token_lifetime.as_secs();
    let claims = json!({
        "aud": shared.base_url, "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now_unix, "nbf": now_unix, "exp": now_unix + lifetime,
        "appid": shared.apps.get(app).map(|a| a.client_id.as_str()), "tid": tenant,
        "oid": seed::app_user_id(app), "idtyp": "app", "jti": uuid::Uuid::new_v4().to_string(),
    });
    let header = br#"{"typ":"JWT","alg":"RS256","kid":"sim"}"#;
    let mut signature = uuid::Uuid::new_v4().as_bytes().to_vec();
    signature.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let access_token = [header.as_slice(), claims.to_string().as_bytes(), &signature]
        .map(base64url)
        .join(".");
    let expires_at = shared.clock.now() + shared.token_lifetime;
    shared.remember_token(access_token.clone(), Issued { expires_at, app });
    access_token
}

/// Entra's error body for `e`.
pub fn error_response(shared: &Shared, e: &AadError) -> Response<SimBody> {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = display_time(unix_now(shared));
    let description = format!(
        "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
        e.code, e.text
    );
    let body = json!({
        "error": e.error, "error_description": description, "error_codes": [e.code], "timestamp": timestamp,
        "trace_id": trace_id, "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={}", e.code),
    });
    entra_json(e.status, body.to_string())
}

/// Entra's answer to anything but a POST on the token endpoint.
pub fn wrong_method(shared: &Shared, method: &http::Method) -> Response<SimBody> {
    let text =
        format!("The endpoint only accepts POST, OPTIONS requests. Received a {method} request.");
    error_response(
        shared,
        &err(StatusCode::BAD_REQUEST, "invalid_request", 900561, text),
    )
}

fn entra_json(status: StatusCode, text: String) -> Response<SimBody> {
    let mut response = with_body(status, "application/json; charset=utf-8", text);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(
        http::header::PRAGMA,
        http::HeaderValue::from_static("no-cache"),
    );
    response
}

fn unix_now(shared: &Shared) -> u64 {
    let elapsed = shared.clock.now().saturating_duration_since(shared.started);
    EPOCH_UNIX_SECS + elapsed.as_secs()
}

/// `2025-01-01 00:00:00Z`, Entra's timestamp format.
pub fn display_time(unix_secs: u64) -> String {
    let (days, secs) = (unix_secs / 86_400, unix_secs % 86_400);
    // Civil-from-days (Howard Hinnant), valid for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}Z")
}

/// Unpadded base64url, as in JWTs.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
        }
    }
    out
}

/// Token lifetime as Entra reports it (whole seconds).
pub fn default_lifetime() -> Duration {
    Duration::from_secs(3599)
}

#[cfg(test)]
#[path = "entra_tests.rs"]
mod tests;
