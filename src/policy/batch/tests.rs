//! `$batch` tests: bodies as the real SDKs write them, every refusal, the round trip, truncation.

use super::*;

mod refusals;

/// LF-only, absolute URLs naming the gateway, `Content-Transfer-Encoding:binary` (no space).
const LF_ABSOLUTE: &str = "--batch_7d6f1c\n\
Content-Type: application/http\n\
Content-Transfer-Encoding:binary\n\
\n\
GET http://gateway-host:8080/api/data/v9.2/contacts?$select=fullname&$top=3 HTTP/1.1\n\
Accept: application/json\n\
\n\
--batch_7d6f1c\n\
Content-Type: multipart/mixed;boundary=changeset_91aa\n\
\n\
--changeset_91aa\n\
Content-Type: application/http\n\
Content-Transfer-Encoding:binary\n\
Content-ID: 1\n\
\n\
POST http://gateway-host:8080/api/data/v9.2/contacts HTTP/1.1\n\
Content-Type: application/json\n\
\n\
{\"firstname\":\"Ada\",\"lastname\":\"Lovelace\"}\n\
--changeset_91aa\n\
Content-Type: application/http\n\
Content-Transfer-Encoding:binary\n\
Content-ID: 2\n\
\n\
POST http://gateway-host:8080/api/data/v9.2/accounts HTTP/1.1\n\
Content-Type: application/json\n\
\n\
{\"name\":\"Engines\",\"primarycontactid@odata.bind\":\"$1\"}\n\
--changeset_91aa--\n\
\n\
--batch_7d6f1c--\n";
const LF_ABSOLUTE_TYPE: &str = "multipart/mixed;boundary=batch_7d6f1c";

/// CRLF, relative URLs, quoted boundaries, a preamble, a `$1` target, an epilogue.
const CRLF_RELATIVE: &str = "This is a preamble.\r\n\
--batch_0c2e\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
GET /api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)?$select=name HTTP/1.1\r\n\
\r\n\
--batch_0c2e\r\n\
Content-Type: multipart/mixed; boundary=\"changeset_5f3d\"\r\n\
\r\n\
--changeset_5f3d\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 1\r\n\
\r\n\
POST contacts HTTP/1.1\r\n\
Content-Type: application/json; type=entry\r\n\
\r\n\
{\"lastname\":\"Hopper\"}\r\n\
--changeset_5f3d\r\n\
Content-Type: application/http\r\n\
Content-Transfer-Encoding: binary\r\n\
Content-ID: 2\r\n\
\r\n\
PUT $1/parentcustomerid_account/$ref HTTP/1.1\r\n\
Content-Type: application/json; type=entry\r\n\
\r\n\
{\"@odata.id\":\"accounts(00000000-0000-0000-0000-000000000001)\"}\r\n\
--changeset_5f3d--\r\n\
\r\n\
--batch_0c2e--\r\n\
epilogue\r\n";
const CRLF_RELATIVE_TYPE: &str = "multipart/mixed; boundary=\"batch_0c2e\"; charset=utf-8";

/// The lines a JavaScript client joins with CRLF: an empty first line, a blank line after each
/// body, a GET with no blank line before the delimiter, Content-IDs from 100001.
const JS_LINES: &[&str] = &[
    "",
    "--dwa_batch_3b1",
    "Content-Type: multipart/mixed;boundary=changeset_77e",
    "",
    "--changeset_77e",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 100001",
    "",
    "POST http://127.0.0.1:8080/api/data/v9.2/contacts HTTP/1.1",
    "Content-Type: application/json",
    "",
    "{\"lastname\":\"Hamilton\"}",
    "",
    "--changeset_77e",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 100002",
    "",
    "PATCH $100001 HTTP/1.1",
    "Content-Type: application/json",
    "content-length : 23",
    "",
    "{\"jobtitle\":\"Director\"}",
    "",
    "--changeset_77e--",
    "",
    "--dwa_batch_3b1",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    "GET http://127.0.0.1:8080/api/data/v9.2/WhoAmI() HTTP/1.1",
    "Accept: application/json",
    "",
    "--dwa_batch_3b1--",
    "",
];
const JS_TYPE: &str = "multipart/mixed;boundary=dwa_batch_3b1";

fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (LF_ABSOLUTE_TYPE, LF_ABSOLUTE.as_bytes().to_vec()),
        (CRLF_RELATIVE_TYPE, CRLF_RELATIVE.as_bytes().to_vec()),
        (JS_TYPE, JS_LINES.join("\r\n").into_bytes()),
    ]
}

fn change_set(batch: &Batch, index: usize) -> &[Part] {
    match &batch.items[index] {
        Item::ChangeSet { parts, .. } => parts,
        Item::Request(_) => panic!("item {index} is not a change set"),
    }
}

#[test]
fn lf_only_body_with_absolute_urls() {
    let batch = parse(LF_ABSOLUTE_TYPE, LF_ABSOLUTE.as_bytes(), 1000).unwrap();
    assert_eq!(batch.boundary, "batch_7d6f1c");
    let Item::Request(get) = &batch.items[0] else {
        panic!("first item is a request")
    };
    assert_eq!(get.method, "GET");
    assert_eq!(
        get.target,
        "http://gateway-host:8080/api/data/v9.2/contacts?$select=fullname&$top=3"
    );
    assert_eq!(get.version, "HTTP/1.1");
    assert_eq!(get.header("ACCEPT"), Some("application/json"));
    assert_eq!(
        get.mime_headers[1],
        ("Content-Transfer-Encoding".into(), "binary".into())
    );
    assert!(get.body.is_empty() && get.content_id.is_none());
    let Item::ChangeSet { boundary, parts } = &batch.items[1] else {
        panic!("second item is a change set")
    };
    assert_eq!(boundary, "changeset_91aa");
    assert_eq!(parts[0].content_id.as_deref(), Some("1"));
    assert_eq!(
        &parts[0].body[..],
        br#"{"firstname":"Ada","lastname":"Lovelace"}"#
    );
    assert_eq!(
        &parts[1].body[..],
        br#"{"name":"Engines","primarycontactid@odata.bind":"$1"}"#
    );
    assert_eq!(batch.parts().count(), 3);
}

#[test]
fn crlf_body_with_relative_urls_and_references() {
    let batch = parse(CRLF_RELATIVE_TYPE, CRLF_RELATIVE.as_bytes(), 1000).unwrap();
    assert_eq!(batch.boundary, "batch_0c2e");
    let parts = change_set(&batch, 1);
    assert_eq!(parts[0].target, "contacts");
    assert_eq!(parts[1].method, "PUT");
    assert_eq!(parts[1].target, "$1/parentcustomerid_account/$ref");
    assert_eq!(
        parts[1].header("content-type"),
        Some("application/json; type=entry")
    );
    assert_eq!(&parts[0].body[..], br#"{"lastname":"Hopper"}"#);
}

#[test]
fn javascript_client_body() {
    let body = JS_LINES.join("\r\n");
    let batch = parse(JS_TYPE, body.as_bytes(), 1000).unwrap();
    let parts = change_set(&batch, 0);
    assert_eq!(parts[0].body.as_ref(), b"{\"lastname\":\"Hamilton\"}\r\n");
    assert_eq!(parts[1].target, "$100001");
    assert_eq!(parts[1].body.as_ref(), b"{\"jobtitle\":\"Director\"}");
    assert_eq!(
        parts[1].header("Content-Length"),
        None,
        "framing is consumed"
    );
    let Item::Request(get) = &batch.items[1] else {
        panic!("second item is a request")
    };
    assert_eq!(get.target, "http://127.0.0.1:8080/api/data/v9.2/WhoAmI()");
    assert!(get.body.is_empty());
}

#[test]
fn round_trip_over_fixtures() {
    for (content_type, body) in fixtures() {
        let batch = parse(content_type, &body, 1000).unwrap();
        let wire = serialize(&batch);
        let again = parse(&batch.content_type(), &wire, 1000).unwrap();
        assert_eq!(again, batch);
        assert_eq!(serialize(&again), wire, "the canonical form is stable");
    }
}

#[test]
fn serialize_recomputes_content_length_and_neutralises_line_breaks() {
    let mut batch = parse(CRLF_RELATIVE_TYPE, CRLF_RELATIVE.as_bytes(), 1000).unwrap();
    let Item::ChangeSet { parts, .. } = &mut batch.items[1] else {
        panic!("second item is a change set")
    };
    parts[0].body = Bytes::from_static(br#"{"lastname":"Hopper","firstname":"Grace"}"#);
    parts[0]
        .headers
        .push(("X-Injected".into(), "a\r\nGET /evil HTTP/1.1".into()));
    parts[0].remove_headers(|name| name.eq_ignore_ascii_case("content-type"));
    let wire = serialize(&batch);
    let text = String::from_utf8_lossy(&wire);
    assert!(text.contains("X-Injected: a  GET /evil HTTP/1.1\r\nContent-Length: 41\r\n\r\n"));
    let again = parse(&batch.content_type(), &wire, 1000).unwrap();
    assert_eq!(again.parts().count(), 3);
    let edited = &change_set(&again, 1)[0];
    assert_eq!(edited.header("x-injected"), Some("a  GET /evil HTTP/1.1"));
    assert_eq!(edited.header("content-type"), None);
    assert_eq!(edited.body, change_set(&batch, 1)[0].body);
}

#[test]
fn truncation_at_every_offset_never_panics() {
    for (content_type, body) in fixtures() {
        let close = format!("--{}--", boundary_of(content_type).unwrap());
        let complete = body
            .windows(close.len())
            .position(|w| w == close.as_bytes())
            .unwrap();
        for end in 0..body.len() {
            let result = parse(content_type, &body[..end], 1000);
            if end < complete + close.len() {
                assert!(result.is_err(), "a prefix of {end} bytes was accepted");
            }
        }
        for at in 0..body.len() {
            let mut corrupt = body.clone();
            corrupt[at] = b'-';
            let _ = parse(content_type, &corrupt, 1000);
            corrupt[at] = b'\n';
            let _ = parse(content_type, &corrupt, 1000);
        }
    }
}
