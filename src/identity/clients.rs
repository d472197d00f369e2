//! Internal client keys (`clients:` in the config; see docs/configuration.md and
//! docs/security-model.md).
//!
//! When clients are configured, every request must carry a key as `Authorization: Bearer <key>`
//! (so unmodified SDKs can send it as their "token"). The config holds only the SHA-256 of each
//! key; the presented key is hashed and compared with EVERY client's hash in constant time, so
//! neither the comparison nor the position of the matching client shows in the timing.
//!
//! Invariants: a missing or wrong key is a 401 before routing (an unauthenticated caller learns
//! nothing about tenants); a valid key used for a tenant outside the client's list is a 403; the
//! key is never logged, never put in an error, and never forwarded (the proxy forwards no agent
//! `Authorization` header). Pure: no I/O, no clock.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::config::ClientKey;
use crate::error::GatewayError;

/// The client whose key the request carries; `None` when no clients are configured.
pub fn authenticate<'c>(
    clients: &'c [ClientKey],
    headers: &HeaderMap,
) -> Result<Option<&'c ClientKey>, GatewayError> {
    if clients.is_empty() {
        return Ok(None);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(GatewayError::Unauthorized(
            "this gateway requires a client key: send it as `Authorization: Bearer <key>`".into(),
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty());
    let Some(key) = key else {
        return Err(GatewayError::Unauthorized(
            "the Authorization header must be `Bearer <client key>`".into(),
        ));
    };
    let presented = digest(&SHA256, key.as_bytes());
    let mut found = None;
    for c in clients {
        if verify_slices_are_equal(presented.as_ref(), &c.key_sha256).is_ok() {
            found = Some(c);
        }
    }
    found.map(Some).ok_or_else(|| {
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

    fn client(name: &str, key: &str, tenants: &[&str]) -> ClientKey {
        let hex = key_sha256_hex(key);
        let mut key_sha256 = [0u8; 32];
        for (i, b) in key_sha256.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap();
        }
        ClientKey {
            name: name.into(),
            key_sha256,
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
        }
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
        assert!(authenticate(&[], &HeaderMap::new()).unwrap().is_none());
        let no_key = authenticate(&clients, &HeaderMap::new()).unwrap_err();
        assert_eq!(no_key.status(), 401);
        for bad in ["Bearer nope", "Basic k-sales", "Bearer ", "k-sales"] {
            let e = authenticate(&clients, &with_auth(bad)).unwrap_err();
            assert_eq!(e.status(), 401, "{bad}");
            assert!(!e.to_string().contains("k-sales"));
        }
        let sales = authenticate(&clients, &with_auth("Bearer k-sales"))
            .unwrap()
            .unwrap();
        assert_eq!(sales.name, "sales");
        let ops = authenticate(&clients, &with_auth("bearer k-ops"))
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
