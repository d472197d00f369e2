//! The simulated vault's HTTP side: checks (outage, token, throttling, role), then the three
//! operations, in Key Vault's shapes and error codes. See the parent module for the contract.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{self, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::{SimVaultRequest, SimVaultRole, VAULT_RESOURCE};
use crate::sim::credentials::wall_secs;
use crate::sim::form::parse_pairs;
use crate::sim::response::{SimBody, set_header, with_body};
use crate::sim::state::{Shared, lock};

/// Whether `path` is the vault's.
pub fn is_vault_path(path: &str) -> bool {
    ["/secrets/", "/certificates/", "/keys/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Answers one vault request and logs it.
pub fn route(shared: &Shared, parts: &Parts, body: &[u8]) -> Response<SimBody> {
    let response = answer(shared, parts, body);
    lock(&shared.vault.log).push(SimVaultRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        status: response.status().as_u16(),
    });
    response
}

/// Whether `resource` is Key Vault's (the managed identity endpoint then issues a vault token).
pub fn is_vault_resource(resource: &str) -> bool {
    resource
        .trim_end_matches('/')
        .eq_ignore_ascii_case(VAULT_RESOURCE)
}

/// A Key Vault token for app number `app`, remembered until it expires.
pub fn mint(shared: &Shared, app: usize) -> String {
    let now = wall_secs(shared);
    let claims = json!({
        "aud": VAULT_RESOURCE, "appid": shared.apps.get(app).map(|a| a.client_id.as_str()),
        "oid": crate::sim::seed::app_user_id(app), "iat": now, "exp": now + shared.token_lifetime.as_secs(),
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let header = br#"{"typ":"JWT","alg":"RS256","kid":"sim-vault"}"#;
    let token = [
        header.as_slice(),
        claims.to_string().as_bytes(),
        uuid::Uuid::new_v4().as_bytes(),
    ]
    .map(|b| URL_SAFE_NO_PAD.encode(b))
    .join(".");
    let expires = shared.clock.now() + shared.token_lifetime;
    let mut tokens = lock(&shared.vault.tokens);
    let now = shared.clock.now();
    tokens.retain(|_, (at, _)| *at > now);
    tokens.insert(token.clone(), (expires, app));
    token
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<SimBody> {
    let body = json!({ "error": { "code": code, "message": message } });
    with_body(status, "application/json; charset=utf-8", body.to_string())
}

fn ok(value: &Value) -> Response<SimBody> {
    with_body(
        StatusCode::OK,
        "application/json; charset=utf-8",
        value.to_string(),
    )
}

fn answer(shared: &Shared, parts: &Parts, body: &[u8]) -> Response<SimBody> {
    if lock(&shared.vault.faults).down {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is unavailable.",
        );
    }
    let query = parse_pairs(parts.uri.query().unwrap_or_default());
    let version_ok = query
        .iter()
        .any(|(k, v)| k == "api-version" && v.starts_with("7."));
    if !version_ok {
        let text = "The request is missing a supported api-version.";
        return error(StatusCode::BAD_REQUEST, "BadParameter", text);
    }
    let Some(app) = caller(shared, parts) else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
        let challenge = format!(
            "Bearer authorization=\"{}/{}\", resource=\"{VAULT_RESOURCE}\"",
            shared.base_url,
            shared.home_tenant()
        );
        set_header(&mut r, "www-authenticate", &challenge);
        return r;
    };
    if let Some(r) = throttled(shared) {
        return r;
    }
    let segments: Vec<&str> = parts
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    let (role, action) = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["secrets", ..]) => (SimVaultRole::SecretsUser, "secrets/getSecret"),
        (&Method::GET, ["certificates", ..]) => {
            (SimVaultRole::CertificateUser, "certificates/read")
        }
        (&Method::POST, ["keys", _, _, "sign"]) => (SimVaultRole::CryptoUser, "keys/sign"),
        _ => {
            let text = "The operation is not supported by this simulated vault.";
            return error(StatusCode::BAD_REQUEST, "BadParameter", text);
        }
    };
    let name = segments.get(1).copied().unwrap_or_default();
    if lock(&shared.vault.revoked).contains(&(role, name.to_string())) {
        return forbidden(shared, app, action, name);
    }
    match segments.as_slice() {
        ["secrets", name] => secret(shared, name, None),
        ["secrets", name, version] => secret(shared, name, Some(version)),
        ["certificates", name] => certificate(shared, name, None),
        ["certificates", name, version] => certificate(shared, name, Some(version)),
        ["keys", name, version, "sign"] => sign(shared, name, version, body),
        _ => error(StatusCode::BAD_REQUEST, "BadParameter", "Unknown path."),
    }
}

/// The app a valid vault token was issued to.
fn caller(shared: &Shared, parts: &Parts) -> Option<usize> {
    let value = parts.headers.get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    let now = shared.clock.now();
    let (expires, app) = *lock(&shared.vault.tokens).get(token)?;
    (now < expires).then_some(app)
}

fn throttled(shared: &Shared) -> Option<Response<SimBody>> {
    let mut faults = lock(&shared.vault.faults);
    if faults.throttled.0 == 0 {
        return None;
    }
    faults.throttled.0 -= 1;
    let text = "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached";
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Throttled", text);
    set_header(&mut r, "retry-after", &faults.throttled.1.to_string());
    Some(r)
}

/// Key Vault's RBAC refusal, naming the caller.
fn forbidden(shared: &Shared, app: usize, action: &str, name: &str) -> Response<SimBody> {
    let appid = shared.apps.get(app).map_or("", |a| a.client_id.as_str());
    let oid = crate::sim::seed::app_user_id(app);
    let tenant = shared.home_tenant();
    let message = format!(
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={appid};oid={oid};iss=https://sts.windows.net/{tenant}/\r\nAction: 'Microsoft.KeyVault/vaults/{action}/action'\r\nResource: '{name}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\n"
    );
    let body = json!({ "error": { "code": "Forbidden", "message": message, "innererror": { "code": "ForbiddenByRbac" } } });
    with_body(
        StatusCode::FORBIDDEN,
        "application/json; charset=utf-8",
        body.to_string(),
    )
}

fn not_found(kind: &str, code: &str, name: &str) -> Response<SimBody> {
    let text = format!(
        "A {kind} with (name/id) {name} was not found in this key vault. If you recently deleted this {kind} you may be able to recover it using the correct recovery command."
    );
    error(StatusCode::NOT_FOUND, code, &text)
}

fn attributes(shared: &Shared) -> Value {
    let now = wall_secs(shared);
    json!({ "enabled": true, "created": now, "updated": now, "recoveryLevel": "Recoverable+Purgeable" })
}

fn secret(shared: &Shared, name: &str, version: Option<&str>) -> Response<SimBody> {
    let secrets = lock(&shared.vault.secrets);
    let found = secrets.get(name).and_then(|versions| match version {
        None => versions.last(),
        Some(v) => versions.iter().find(|s| s.version == v),
    });
    let Some(s) = found else {
        return not_found("secret", "SecretNotFound", name);
    };
    let base = &shared.base_url;
    let mut body = json!({
        "value": s.value, "id": format!("{base}/secrets/{name}/{}", s.version), "attributes": attributes(shared),
    });
    if let Some(ct) = &s.content_type {
        body["contentType"] = json!(ct);
    }
    if let Some(kid) = &s.kid {
        body["kid"] = json!(format!("{base}/{kid}"));
        body["managed"] = json!(true);
    }
    ok(&body)
}

fn certificate(shared: &Shared, name: &str, version: Option<&str>) -> Response<SimBody> {
    let certificates = lock(&shared.vault.certificates);
    let found = certificates.get(name).and_then(|versions| match version {
        None => versions.last(),
        Some(v) => versions.iter().find(|c| c.version == v),
    });
    let Some(c) = found else {
        return not_found("certificate", "CertificateNotFound", name);
    };
    let base = &shared.base_url;
    let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &c.der);
    ok(&json!({
        "id": format!("{base}/certificates/{name}/{}", c.version),
        "kid": format!("{base}/keys/{name}/{}", c.key_version),
        "sid": format!("{base}/secrets/{name}/{}", c.version),
        "x5t": URL_SAFE_NO_PAD.encode(sha1), "cer": STANDARD.encode(&c.der),
        "attributes": attributes(shared),
    }))
}

fn sign(shared: &Shared, name: &str, version: &str, body: &[u8]) -> Response<SimBody> {
    let key = lock(&shared.vault.keys).get(name).and_then(|versions| {
        versions
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, k)| k.clone())
    });
    let Some(key) = key else {
        return not_found("key", "KeyNotFound", &format!("{name}/{version}"));
    };
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let padding: &'static dyn signature::RsaEncoding = match request["alg"].as_str() {
        Some("PS256") => &signature::RSA_PSS_SHA256,
        Some("RS256") => &signature::RSA_PKCS1_SHA256,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "Invalid algorithm.",
            );
        }
    };
    let digest = request["value"]
        .as_str()
        .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
        .and_then(|d| Digest::import_less_safe(&d, &digest::SHA256).ok());
    let Some(digest) = digest else {
        let text = "The digest must be the 32 bytes of a SHA-256 hash, base64url.";
        return error(StatusCode::BAD_REQUEST, "BadParameter", text);
    };
    let Ok(pair) = RsaKeyPair::from_pkcs8(&key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The key is not an RSA key.",
        );
    };
    let mut signature = vec![0; pair.public_modulus_len()];
    if pair.sign_digest(padding, &digest, &mut signature).is_err() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Signing failed.",
        );
    }
    let base = &shared.base_url;
    ok(
        &json!({ "kid": format!("{base}/keys/{name}/{version}"), "value": URL_SAFE_NO_PAD.encode(signature) }),
    )
}
