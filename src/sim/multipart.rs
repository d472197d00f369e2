//! The `$batch` response body, in the wire form Dataverse writes (see "Execute batch operations
//! using the Web API"):
//!
//! ```text
//! --batchresponse_<guid>
//! Content-Type: application/http
//! Content-Transfer-Encoding: binary
//!
//! HTTP/1.1 204 No Content
//! OData-Version: 4.0
//! Location: <base>/api/data/v9.2/contacts(<id>)
//! OData-EntityId: <base>/api/data/v9.2/contacts(<id>)
//!
//!
//! --batchresponse_<guid>
//! Content-Type: multipart/mixed; boundary=changesetresponse_<guid>
//!
//! --changesetresponse_<guid>
//! Content-Type: application/http
//! Content-Transfer-Encoding: binary
//! Content-ID: 1
//!
//! HTTP/1.1 201 Created
//! ...
//! --changesetresponse_<guid>--
//! --batchresponse_<guid>--
//! ```
//!
//! Invariants: CRLF line endings throughout; the body starts with the first delimiter (no
//! preamble), which some SDKs rely on; every part's content ends with CRLF before the next
//! delimiter; `OData-Version: 4.0` comes first in each inner response and `Location` accompanies
//! every `OData-EntityId`. Pure: no I/O, no clock (the boundaries' GUIDs are random).

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};

use super::response::{SimBody, body_now};

/// One inner response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Header names as Dataverse spells them.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Answer {
    pub fn from_response(response: Response<SimBody>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: headers(&parts.headers),
            body: body_now(body),
        }
    }

    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The `OData-EntityId` of a written row, if any.
    pub fn entity_id(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == "OData-EntityId")
            .map(|(_, value)| value.as_str())
    }
}

/// `OData-Version` first, `Location` beside `OData-EntityId`, then the rest in order.
fn headers(map: &HeaderMap) -> Vec<(String, String)> {
    let mut out = vec![("OData-Version".to_string(), "4.0".to_string())];
    for (name, value) in map {
        let Ok(value) = value.to_str() else { continue };
        let name = canonical(name.as_str());
        if name == "OData-Version" || name == "Location" {
            continue;
        }
        if name == "OData-EntityId" {
            out.push(("Location".into(), value.into()));
        }
        out.push((name, value.into()));
    }
    out
}

fn canonical(name: &str) -> String {
    let known = [
        "Content-Type",
        "OData-EntityId",
        "OData-Version",
        "ETag",
        "Location",
        "Preference-Applied",
        "Retry-After",
        "REQ_ID",
    ];
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |k| k.to_string())
}

/// Accumulates the response body, item by item.
pub struct Writer {
    boundary: String,
    out: Vec<u8>,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            boundary: format!("batchresponse_{}", uuid::Uuid::new_v4()),
            out: Vec::new(),
        }
    }
}

impl Writer {
    /// A top-level response (a request outside a change set, or a failed change set).
    pub fn single(&mut self, answer: &Answer) {
        line(&mut self.out, &format!("--{}", self.boundary));
        part(&mut self.out, answer, None);
    }

    /// The responses of a successful change set, with their Content-IDs.
    pub fn change_set(&mut self, answers: &[(Option<String>, Answer)]) {
        let inner = format!("changesetresponse_{}", uuid::Uuid::new_v4());
        line(&mut self.out, &format!("--{}", self.boundary));
        line(
            &mut self.out,
            &format!("Content-Type: multipart/mixed; boundary={inner}"),
        );
        line(&mut self.out, "");
        for (content_id, answer) in answers {
            line(&mut self.out, &format!("--{inner}"));
            part(&mut self.out, answer, content_id.as_deref());
        }
        line(&mut self.out, &format!("--{inner}--"));
    }

    /// The `Content-Type` header value and the finished body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        line(&mut self.out, &format!("--{}--", self.boundary));
        let content_type = format!("multipart/mixed; boundary={}", self.boundary);
        (content_type, self.out)
    }
}

fn part(out: &mut Vec<u8>, answer: &Answer, content_id: Option<&str>) {
    line(out, "Content-Type: application/http");
    line(out, "Content-Transfer-Encoding: binary");
    if let Some(id) = content_id {
        line(out, &format!("Content-ID: {id}"));
    }
    line(out, "");
    let reason = answer.status.canonical_reason().unwrap_or("Unknown");
    line(
        out,
        &format!("HTTP/1.1 {} {reason}", answer.status.as_u16()),
    );
    for (name, value) in &answer.headers {
        line(out, &format!("{name}: {value}"));
    }
    line(out, "");
    out.extend_from_slice(&answer.body);
    out.extend_from_slice(b"\r\n");
}

/// One CRLF-terminated line; CR and LF inside become spaces so no value can add lines.
fn line(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|b| match b {
        b'\r' | b'\n' => b' ',
        b => b,
    }));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::response::{no_content, odata_json, set_header};
    use serde_json::json;

    #[test]
    fn writes_parts_and_change_sets_with_crlf() {
        let mut created = no_content();
        set_header(
            &mut created,
            "odata-entityid",
            "http://h/api/data/v9.2/leads(1)",
        );
        let created = Answer::from_response(created);
        assert_eq!(created.entity_id(), Some("http://h/api/data/v9.2/leads(1)"));
        let read = Answer::from_response(odata_json(StatusCode::OK, &json!({"a": 1})));
        let mut writer = Writer::default();
        writer.single(&read);
        writer.change_set(&[(Some("1".into()), created)]);
        let (content_type, body) = writer.finish();
        let boundary = content_type
            .strip_prefix("multipart/mixed; boundary=")
            .expect("boundary");
        let text = String::from_utf8(body).expect("utf-8");
        assert!(text.starts_with(&format!("--{boundary}\r\n")), "{text}");
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")), "{text}");
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        assert!(text.contains(
            "HTTP/1.1 200 OK\r\nOData-Version: 4.0\r\nContent-Type: application/json; \
             odata.metadata=minimal\r\n\r\n{\"a\":1}\r\n--batchresponse_"
        ));
        assert!(text.contains(
            "Content-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n\
             Location: http://h/api/data/v9.2/leads(1)\r\nOData-EntityId: http://h/api/data/v9.2/leads(1)\r\n\r\n\r\n--changesetresponse_"
        ));
        assert!(text.contains("--\r\n--batchresponse_"), "{text}");
    }
}
