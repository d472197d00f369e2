//! Client assertion validation as Entra ID does it: a certificate assertion is looked up by its
//! `x5t#S256` (or legacy `x5t`) among the app's registered certificates, its signature checked
//! with that certificate's key (RS256 or PS256), then `aud` (the exact token endpoint URL),
//! `iss`/`sub` (the client id) and `nbf`/`exp` with five minutes of clock skew. A federated token
//! (workload identity) is recognised by its issuer being this simulator's, verified with the
//! simulator's key and matched against the app's federated credentials.
//!
//! Codes: 50027 malformed (not a JWT, no thumbprint, unknown algorithm), 700027 unknown
//! certificate or bad signature, 700023 audience, 700021 issuer/subject, 700024 time window,
//! 70021 no matching federated credential. Pure apart from reading the registry and the clock.

use http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::credentials::{self, FEDERATED_AUDIENCE};
use super::entra::{AadError, err};
use super::form::Form;
use super::state::{Shared, lock};

/// Clock skew Entra tolerates on `nbf` and `exp`.
pub const SKEW_SECS: u64 = 300;

fn unauthorized(code: u32, text: impl Into<String>) -> AadError {
    err(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        code,
        text.into(),
    )
}

fn malformed(text: &str) -> AadError {
    err(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50027,
        format!("JWT token is invalid or malformed. {text}"),
    )
}

/// Decides the client assertion of a token request for app number `app`.
pub fn verify(shared: &Shared, tenant: &str, app: usize, form: &Form) -> Result<(), AadError> {
    let jwt = form.get("client_assertion").unwrap_or_default();
    if form.get("client_assertion_type") != Some(crate::identity::token::entra::JWT_BEARER) {
        return Err(malformed("client_assertion_type must be jwt-bearer."));
    }
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|_| malformed("Token format not valid."))?;
    let claims = unverified_claims(jwt).ok_or_else(|| malformed("Token format not valid."))?;
    let client_id = &shared.apps[app].client_id;
    let now = credentials::wall_secs(shared);
    if claims["iss"].as_str() == Some(credentials::issuer(shared).as_str()) {
        return federated(shared, app, jwt, &claims, now);
    }
    let Some(der) = find_certificate(shared, app, &header) else {
        if header.x5t_s256.is_none() && header.x5t.is_none() {
            return Err(malformed(
                "No certificate thumbprint specified in token header.",
            ));
        }
        let text = format!(
            "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{}']",
            header.x5t_s256.or(header.x5t).unwrap_or_default()
        );
        return Err(unauthorized(700027, text));
    };
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(malformed("The signing algorithm is not supported."));
    }
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| unauthorized(700027, "The registered certificate cannot be read."))?;
    let key = DecodingKey::from_rsa_der(&cert.public_key().subject_public_key.data);
    if jsonwebtoken::decode::<Value>(jwt, &key, &signature_only(header.alg)).is_err() {
        let text = "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]";
        return Err(unauthorized(700027, text));
    }
    let expected_aud = format!("{}/{tenant}/oauth2/v2.0/token", shared.base_url);
    if !audience_is(&claims["aud"], &expected_aud) {
        let text = format!(
            "Client assertion audience claim does not match Realm issuer. Expected {expected_aud}."
        );
        return Err(unauthorized(700023, text));
    }
    for claim in ["iss", "sub"] {
        if !claims[claim]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case(client_id))
        {
            let text = format!(
                "Client assertion failed validation: '{claim}' must be the client id '{client_id}'."
            );
            return Err(unauthorized(700021, text));
        }
    }
    window(&claims, now)
}

/// A federated (workload identity) token for app number `app`.
fn federated(
    shared: &Shared,
    app: usize,
    jwt: &str,
    claims: &Value,
    now: u64,
) -> Result<(), AadError> {
    let key = DecodingKey::from_secret(&shared.creds.federation_key);
    let valid = key.is_ok_and(|key| {
        jsonwebtoken::decode::<Value>(jwt, &key, &signature_only(Algorithm::HS256)).is_ok()
    });
    if !valid {
        return Err(unauthorized(
            700027,
            "Client assertion contains an invalid signature.",
        ));
    }
    window(claims, now)?;
    let subject = claims["sub"].as_str().unwrap_or_default();
    let matches = lock(&shared.creds.federated)
        .iter()
        .any(|f| f.app == app && f.subject == subject)
        && audience_is(&claims["aud"], FEDERATED_AUDIENCE);
    if matches {
        Ok(())
    } else {
        let text = format!(
            "No matching federated identity record found for presented assertion subject '{subject}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion."
        );
        Err(err(StatusCode::BAD_REQUEST, "invalid_request", 70021, text))
    }
}

/// `nbf <= now + skew` and `now < exp + skew`.
fn window(claims: &Value, now: u64) -> Result<(), AadError> {
    let (Some(nbf), Some(exp)) = (claims["nbf"].as_u64(), claims["exp"].as_u64()) else {
        return Err(malformed("The token has no nbf or exp claim."));
    };
    if nbf > now + SKEW_SECS || now >= exp + SKEW_SECS {
        let text = format!(
            "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
            super::entra::display_time(now),
            super::entra::display_time(nbf),
            super::entra::display_time(exp)
        );
        return Err(unauthorized(700024, text));
    }
    Ok(())
}

fn find_certificate(shared: &Shared, app: usize, header: &jsonwebtoken::Header) -> Option<Vec<u8>> {
    use aws_lc_rs::digest;
    use base64::Engine;
    let b64 = |alg, der: &[u8]| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest::digest(alg, der))
    };
    lock(&shared.creds.certificates)
        .iter()
        .filter(|c| c.app == app)
        .find(|c| match (&header.x5t_s256, &header.x5t) {
            (Some(t), _) => *t == b64(&digest::SHA256, &c.der),
            (None, Some(t)) => *t == b64(&digest::SHA1_FOR_LEGACY_USE_ONLY, &c.der),
            (None, None) => false,
        })
        .map(|c| c.der.clone())
}

/// Validation of the signature alone; the claims are checked here, with Entra's codes.
fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v
}

fn audience_is(aud: &Value, expected: &str) -> bool {
    match aud {
        Value::String(s) => s == expected,
        Value::Array(items) => items.iter().any(|a| a.as_str() == Some(expected)),
        _ => false,
    }
}

/// The claims of a JWT without checking anything (to choose how to check it).
fn unverified_claims(jwt: &str) -> Option<Value> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
