//! Who the agent is: the named clients of `clients:` (see docs/configuration.md and
//! docs/security-model.md), by static key or by Entra ID access token.
//!
//! [`authenticate`] is the one entry point every front door calls (the Web API pipeline, and any
//! other listener path that serves agents). When clients or `agent_auth` are configured, every
//! request must carry `Authorization: Bearer <credential>` (what unmodified SDKs send as their
//! "token"):
//! - a JWT (when `agent_auth` is set) is validated by [`crate::identity::agent_token`] and its
//!   identity mapped to the client whose `entra` matches (`object_id`, then `app_id`, then
//!   `role`; config order among equals);
//! - anything else is a static key: hashed and compared with EVERY key client's hash in constant
//!   time, so neither the comparison nor the position of the matching client shows in the timing.
//!
//! Invariants: a missing or invalid credential is a 401 naming the reason, before routing (an
//! unauthenticated caller learns nothing about tenants); a valid token that maps to no client is
//! a 403; a client used for a tenant outside its list is a 403; the credential is never logged,
//! never put in an error, and never forwarded (the proxy forwards no agent `Authorization`).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::config::{ClientAuth, ClientKey, EntraMatch};
use crate::error::GatewayError;
use crate::identity::agent_token::AgentTokens;
use crate::identity::agent_token::jwt::Identity;

/// The client the request's credential proves; `None` when neither clients nor `agent_auth`
/// are configured.
pub async fn authenticate<'c>(
    clients: &'c [ClientKey],
    agents: Option<&AgentTokens>,
    headers: &HeaderMap,
) -> Result<Option<&'c ClientKey>, GatewayError> {
    if clients.is_empty() && agents.is_none() {
        return Ok(None);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(GatewayError::Unauthorized(
            "this gateway requires a client credential: send `Authorization: Bearer <token or key>`"
                .into(),
        ));
    };
    let credential = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty());
    let Some(credential) = credential else {
        return Err(GatewayError::Unauthorized(
            "the Authorization header must be `Bearer <token or key>`".into(),
        ));
    };
    match agents {
        Some(agents) if looks_like_jwt(credential) => {
            let identity = agents.validate(credential).await.map_err(|why| {
                GatewayError::Unauthorized(format!("the agent token is refused: {why}"))
            })?;
            map_identity(clients, &identity).map(Some)
        }
        _ => by_key(clients, credential).map(Some),
    }
}

/// A compact JWS: three base64url parts, the header a JSON object (`eyJ` is `{"`).
/// The dots are found with `memchr` (a token is 1-2 KB, read on every request).
fn looks_like_jwt(credential: &str) -> bool {
    credential.starts_with("eyJ")
        && memchr::memchr_iter(b'.', credential.as_bytes())
            .take(3)
            .count()
            == 2
}

/// The client a validated token's identity is configured as.
pub fn map_identity<'c>(
    clients: &'c [ClientKey],
    identity: &Identity,
) -> Result<&'c ClientKey, GatewayError> {
    let matches = |want: fn(&EntraMatch, &Identity) -> bool| {
        clients
            .iter()
            .find(|c| matches!(&c.auth, ClientAuth::Entra(m) if want(m, identity)))
    };
    matches(|m, id| matches!(m, EntraMatch::ObjectId(o) if Some(o) == id.object_id.as_ref()))
        .or_else(|| {
            matches(|m, id| matches!(m, EntraMatch::AppId(a) if Some(a) == id.app_id.as_ref()))
        })
        .or_else(|| matches(|m, id| matches!(m, EntraMatch::Role(r) if id.roles.contains(r))))
        .ok_or_else(|| {
            GatewayError::PolicyDenied(format!(
                "the agent token is valid but its identity (app id {}, object id {}) is not a client of this gateway",
                id_or_dash(&identity.app_id),
                id_or_dash(&identity.object_id),
            ))
        })
}

fn id_or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn by_key<'c>(clients: &'c [ClientKey], key: &str) -> Result<&'c ClientKey, GatewayError> {
    let presented = digest(&SHA256, key.as_bytes());
    let mut found = None;
    for c in clients {
        if let ClientAuth::Key(hash) = &c.auth
            && verify_slices_are_equal(presented.as_ref(), hash).is_ok()
        {
            found = Some(c);
        }
    }
    found.ok_or_else(|| {
        GatewayError::Unauthorized("the client key is not valid for this gateway".into())
    })
}

/// Checks that `client` (if any) may use `tenant`.
pub fn authorize(client: Option<&ClientKey>, tenant: &str) -> Result<(), GatewayError> {
    match client {
        Some(c) if !c.tenants.iter().any(|t| t == tenant) => Err(GatewayError::PolicyDenied(
            format!("client {} may not use tenant {tenant}", c.name),
        )),
        _ => Ok(()),
    }
}

/// The lowercase hex SHA-256 of `key`: what goes into `key_sha256`.
pub fn key_sha256_hex(key: &str) -> String {
    digest(&SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_jwt_is_told_from_a_key_by_its_header_and_its_two_dots() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2ln"));
        assert!(looks_like_jwt("eyJ..")); // the shape only; validation refuses it
        for not in [
            "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0",
            "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2ln.more",
            "eyJ...",
            "sk-live-key.with.dots",
            "",
        ] {
            assert!(!looks_like_jwt(not), "{not}");
        }
    }

    fn client(name: &str, key: &str, tenants: &[&str]) -> ClientKey {
        let hex = key_sha256_hex(key);
        let mut key_sha256 = [0u8; 32];
        for (i, b) in key_sha256.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap();
        }
        ClientKey {
            name: name.into(),
            auth: ClientAuth::Key(key_sha256),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            limits: None,
            per_tenant: Default::default(),
        }
    }

    fn block<'c>(
        clients: &'c [ClientKey],
        headers: &HeaderMap,
    ) -> Result<Option<&'c ClientKey>, GatewayError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(authenticate(clients, None, headers))
    }

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn known_hash() {
        assert_eq!(
            key_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn keys_are_checked_and_scoped_to_tenants() {
        let clients = [
            client("sales", "k-sales", &["contoso"]),
            client("ops", "k-ops", &["contoso", "fabrikam"]),
        ];
        assert!(block(&[], &HeaderMap::new()).unwrap().is_none());
        let no_key = block(&clients, &HeaderMap::new()).unwrap_err();
        assert_eq!(no_key.status(), 401);
        for bad in ["Bearer nope", "Basic k-sales", "Bearer ", "k-sales"] {
            let e = block(&clients, &with_auth(bad)).unwrap_err();
            assert_eq!(e.status(), 401, "{bad}");
            assert!(!e.to_string().contains("k-sales"));
        }
        let sales = block(&clients, &with_auth("Bearer k-sales"))
            .unwrap()
            .unwrap();
        assert_eq!(sales.name, "sales");
        let ops = block(&clients, &with_auth("bearer k-ops"))
            .unwrap()
            .unwrap();
        assert_eq!(ops.name, "ops");
        assert!(authorize(Some(sales), "contoso").is_ok());
        assert_eq!(
            authorize(Some(sales), "fabrikam").unwrap_err().status(),
            403
        );
        assert!(authorize(Some(ops), "fabrikam").is_ok());
        assert!(authorize(None, "fabrikam").is_ok());
    }
}
