//! The simulated managed identity endpoints: Azure IMDS
//! (`GET /metadata/identity/oauth2/token`, header `Metadata: true`, numbers as strings) and App
//! Service / Functions (`GET /msi/token`, header `X-IDENTITY-HEADER`, `expires_on` only).
//!
//! Both issue ordinary simulator tokens for `SimConfig::managed_identity_app`. Checks: the
//! required header, `api-version`, `resource` (the org URL), `client_id` when given (a
//! user-assigned identity must be the configured app). `make_imds_busy` answers 503 first.
//! For Key Vault's resource the token is one the simulated vault accepts (`vault`).

use http::request::Parts;
use http::{Response, StatusCode};
use serde_json::json;

use super::credentials::{self, IDENTITY_HEADER};
use super::form::parse_pairs;
use super::response::{SimBody, with_body};
use super::state::Shared;

/// Answers a managed identity request, or `None` when the path is not one of ours.
pub fn route(shared: &Shared, parts: &Parts) -> Option<Response<SimBody>> {
    let app_service = match parts.uri.path() {
        "/metadata/identity/oauth2/token" => false,
        "/msi/token" => true,
        _ => return None,
    };
    Some(answer(shared, parts, app_service))
}

fn answer(shared: &Shared, parts: &Parts, app_service: bool) -> Response<SimBody> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if app_service && header("x-identity-header") != Some(IDENTITY_HEADER) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "X-IDENTITY-HEADER is missing or wrong",
        );
    }
    if !app_service && header("metadata") != Some("true") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if credentials::imds_busy(shared) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "busy",
        );
    }
    let query = parse_pairs(parts.uri.query().unwrap_or_default());
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let expected_version = if app_service {
        "2019-08-01"
    } else {
        "2018-02-01"
    };
    if param("api-version") != Some(expected_version) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "api-version is missing or not supported",
        );
    }
    let resource = param("resource").unwrap_or_default();
    let for_vault = super::vault::is_vault_resource(resource);
    if !for_vault
        && !resource
            .trim_end_matches('/')
            .eq_ignore_ascii_case(&shared.base_url)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            "The resource is not known",
        );
    }
    let Some(app) = shared.creds.managed_identity_app else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    if let Some(id) = param("client_id")
        && !shared.apps[app].client_id.eq_ignore_ascii_case(id)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    }
    let tenant = shared.apps[app].tenant_id.clone();
    let token = if for_vault {
        super::vault::mint(shared, app)
    } else {
        super::entra::mint(shared, &tenant, app)
    };
    let lifetime = shared.token_lifetime.as_secs();
    let now = credentials::wall_secs(shared);
    let body = if app_service {
        json!({
            "access_token": token, "expires_on": (now + lifetime).to_string(), "resource": resource,
            "token_type": "Bearer", "client_id": shared.apps[app].client_id,
        })
    } else {
        json!({
            "access_token": token, "refresh_token": "", "expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime).to_string(), "not_before": now.to_string(),
            "resource": resource, "token_type": "Bearer",
        })
    };
    with_body(
        StatusCode::OK,
        "application/json; charset=utf-8",
        body.to_string(),
    )
}

fn error(status: StatusCode, code: &str, text: &str) -> Response<SimBody> {
    let body = json!({ "error": code, "error_description": text });
    with_body(status, "application/json; charset=utf-8", body.to_string())
}
