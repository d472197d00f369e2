//! Signed query cursors: what a later `query` call needs to continue, carried by the agent.
//!
//! A cursor holds the gateway's own continuation (the `@odata.nextLink` target, relative to the
//! tenant's Web API root), the rows still owed when the agent set `top`, and the page size; it
//! is base64url JSON plus an HMAC-SHA256 over the tenant, the client and that JSON. Nothing is
//! stored server-side, so any replica can serve the next call.
//!
//! The key is derived from the tenant's configuration (its org URL, Entra tenant and app ids),
//! so replicas sharing one `gateway.yaml` share it. Those values are not secret: the signature
//! makes a cursor tamper-evident and scoped (one tenant, one client) against an agent that does
//! not read the config, not unforgeable. That is enough because a cursor grants nothing: the
//! continuation request it names is classified and decided by the pipeline like any other.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::config::Tenant;

/// What a cursor carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The entity set queried.
    pub table: String,
    /// The continuation target after `/api/data/{version}/`.
    pub next: String,
    /// Rows still to return in all, when the agent set `top`.
    pub remaining: Option<u64>,
    pub page_size: u32,
}

/// The cursor key of one tenant (see the module doc).
pub fn key(tenant: &Tenant) -> hmac::Key {
    let mut material = Vec::new();
    for part in [
        "dataverse-gateway mcp cursor v1",
        &tenant.name,
        &tenant.dataverse.url,
        &tenant.auth.tenant_id,
        &tenant.auth.client_id,
    ] {
        material.extend_from_slice(part.as_bytes());
        material.push(0);
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &material);
    hmac::Key::new(hmac::HMAC_SHA256, digest.as_ref())
}

fn tag(key: &hmac::Key, scope: &str, payload: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(scope.as_bytes());
    ctx.update(&[0]);
    ctx.update(payload);
    ctx.sign()
}

/// `scope` binds the cursor to the tenant and client it was issued to.
pub fn seal(key: &hmac::Key, scope: &str, cursor: &Cursor) -> String {
    let payload = serde_json::to_vec(cursor).unwrap_or_default();
    let mac = tag(key, scope, &payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(mac.as_ref())
    )
}

/// The cursor, if `text` was sealed with `key` for `scope` and is whole.
pub fn open(key: &hmac::Key, scope: &str, text: &str) -> Option<Cursor> {
    let (payload, mac) = text.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let mut msg = Vec::with_capacity(scope.len() + 1 + payload.len());
    msg.extend_from_slice(scope.as_bytes());
    msg.push(0);
    msg.extend_from_slice(&payload);
    hmac::verify(key, &msg, &mac).ok()?;
    serde_json::from_slice(&payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(secret: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, secret)
    }

    #[test]
    fn a_cursor_opens_only_with_its_key_and_scope_and_unchanged() {
        let c = Cursor {
            table: "contacts".into(),
            next: "contacts?$skiptoken=abc".into(),
            remaining: Some(7),
            page_size: 5,
        };
        let sealed = seal(&k(b"one"), "contoso\0a", &c);
        assert_eq!(open(&k(b"one"), "contoso\0a", &sealed), Some(c.clone()));
        assert_eq!(open(&k(b"two"), "contoso\0a", &sealed), None);
        assert_eq!(open(&k(b"one"), "contoso\0b", &sealed), None);
        let (payload, mac) = sealed.split_once('.').unwrap();
        let mut forged = c;
        forged.next = "accounts".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            open(&k(b"one"), "contoso\0a", &format!("{forged_payload}.{mac}")),
            None
        );
        assert_eq!(open(&k(b"one"), "contoso\0a", payload), None);
        assert_eq!(open(&k(b"one"), "contoso\0a", "garbage"), None);
    }
}
