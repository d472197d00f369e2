//! Acting as a Dataverse user (`act_as.caller_object_id`): the `CallerObjectId` header the
//! gateway itself sets for a mapped client, on the request and on every part of a `$batch`.
//!
//! Pure. Invariant: the value is always the configured one: an agent's own impersonation
//! headers were dropped by [`crate::policy::headers`] (top level) and [`crate::policy::inspect`]
//! (parts) before this adds the gateway's, so a part carries exactly one `CallerObjectId`.

use bytes::Bytes;
use http::HeaderName;

use crate::policy::batch::{self, Item};
use crate::policy::inspect::MAX_BATCH_PARTS;

/// Dataverse's impersonation header taking the user's Entra object id.
pub static CALLER_OBJECT_ID: HeaderName = HeaderName::from_static("callerobjectid");

/// `body` (a batch as [`crate::policy::inspect`] re-serialised it) with `CallerObjectId:
/// object_id` in every part.
pub fn batch_as(content_type: &str, body: &[u8], object_id: &str) -> Result<Bytes, String> {
    let mut parsed =
        batch::parse(content_type, body, MAX_BATCH_PARTS).map_err(|e| e.to_string())?;
    for item in &mut parsed.items {
        let parts: Vec<&mut batch::Part> = match item {
            Item::Request(p) => vec![p],
            Item::ChangeSet { parts, .. } => parts.iter_mut().collect(),
        };
        for part in parts {
            part.remove_headers(|name| {
                name.eq_ignore_ascii_case("callerobjectid")
                    || name.eq_ignore_ascii_case("mscrmcallerid")
            });
            part.headers
                .push(("CallerObjectId".to_string(), object_id.to_string()));
        }
    }
    Ok(Bytes::from(batch::serialize(&parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_gets_exactly_the_configured_caller() {
        let body = "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET https://org.example/api/data/v9.2/leads HTTP/1.1\r\nCallerObjectId: 00000000-0000-0000-0000-00000000bad0\r\n\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nPOST https://org.example/api/data/v9.2/leads HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}\r\n--c--\r\n\r\n--b--\r\n";
        let out = batch_as("multipart/mixed; boundary=b", body.as_bytes(), "0000-id").unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(text.matches("CallerObjectId: 0000-id").count(), 2, "{text}");
        assert!(!text.contains("bad0"));
    }
}
