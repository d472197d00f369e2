//! `$batch` refusals and limits, on small bodies built part by part (LF line endings).

use super::super::*;

fn get_part(target: &str) -> String {
    format!(
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\n\nGET {target} HTTP/1.1\n"
    )
}

fn write_part(id: &str, line: &str, body: &str) -> String {
    format!(
        "Content-Type: application/http\nContent-ID: {id}\n\n{line}\nContent-Type: application/json\n\n{body}"
    )
}

fn change_set_part(parts: &[String]) -> String {
    let mut out = String::from("Content-Type: multipart/mixed; boundary=cs\n\n");
    for part in parts {
        out += &format!("--cs\n{part}\n");
    }
    out + "--cs--"
}

fn body_of(parts: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for part in parts {
        out += &format!("--b\n{part}\n");
    }
    (out + "--b--\n").into_bytes()
}

const TYPE: &str = "multipart/mixed; boundary=b";

#[test]
fn limits_count_every_request() {
    let parts: Vec<String> = (0..1000)
        .map(|i| get_part(&format!("contacts?$skip={i}")))
        .collect();
    let batch = parse(TYPE, &body_of(&parts), 1000).unwrap();
    assert_eq!(batch.items.len(), 1000);
    let mut parts = parts;
    parts.push(get_part("accounts"));
    let err = parse(TYPE, &body_of(&parts), 1000).unwrap_err();
    assert_eq!(err.to_string(), "$batch: more than 1000 requests");
    let writes: Vec<String> = (0..600)
        .map(|i| write_part(&i.to_string(), "POST contacts HTTP/1.1", "{}"))
        .collect();
    let two = [
        change_set_part(&writes[..300]),
        change_set_part(&writes[300..]),
    ];
    let mut parts = vec![two[0].clone(), two[1].clone()];
    parts.extend((0..400).map(|_| get_part("contacts")));
    assert!(parse(TYPE, &body_of(&parts), 1000).is_ok());
    parts.push(get_part("contacts"));
    assert!(matches!(
        parse(TYPE, &body_of(&parts), 1000),
        Err(BatchError::TooManyRequests { max: 1000 })
    ));
}

#[test]
fn boundary_parameter() {
    assert_eq!(
        boundary_of("multipart/mixed;boundary=batch_1").unwrap(),
        "batch_1"
    );
    assert_eq!(
        boundary_of("Multipart/Mixed; charset=x; BOUNDARY=\"a b:c\"").unwrap(),
        "a b:c"
    );
    let refused = [
        ("application/json", "must be multipart/mixed"),
        ("multipart/related; boundary=x", "must be multipart/mixed"),
        ("multipart/mixed", "no boundary parameter"),
        ("multipart/mixed; boundary=", "boundary is empty"),
        ("multipart/mixed; boundary=a; boundary=b", "repeated"),
        ("multipart/mixed; boundary=\"abc", "not RFC 2046"),
        ("multipart/mixed; boundary=a\"b", "not RFC 2046"),
        ("multipart/mixed; boundary=\"trailing \"", "not RFC 2046"),
    ];
    for (content_type, expected) in refused {
        let err = boundary_of(content_type).unwrap_err().to_string();
        assert!(err.contains(expected), "{content_type}: {err}");
    }
    assert!(boundary_of(&format!("multipart/mixed; boundary={}", "x".repeat(71))).is_err());
}

#[test]
fn tolerated_variations() {
    let part = "content-type : Application/HTTP\r\ncontent-transfer-encoding:BINARY\n\n\
        DELETE  contacts(1)  HTTP/1.1\r\nIf-Match:*\n";
    let batch = parse(TYPE, &body_of(&[part.to_string()]), 10).unwrap();
    let Item::Request(delete) = &batch.items[0] else {
        panic!("a request")
    };
    assert_eq!(
        (delete.method.as_str(), delete.target.as_str()),
        ("DELETE", "contacts(1)")
    );
    assert_eq!(
        delete.mime_headers[0],
        ("content-type".into(), "Application/HTTP".into())
    );
    assert_eq!(delete.header("if-match"), Some("*"));
    let ids_repeat_across_change_sets = [
        change_set_part(&[write_part("1", "POST contacts HTTP/1.1", "{}")]),
        change_set_part(&[write_part("1", "POST accounts HTTP/1.1", "{}")]),
    ];
    assert!(parse(TYPE, &body_of(&ids_repeat_across_change_sets), 10).is_ok());
    assert!(parse(TYPE, b"--b--", 10).unwrap().items.is_empty());
    assert!(parse(TYPE, &body_of(&[get_part("$metadata")]), 10).is_ok());
}

#[test]
fn content_id_in_the_request_headers() {
    let inner = |id: &str, line: &str| {
        format!("Content-Type: application/http\n\n{line}\nContent-ID: {id}\n\n{{}}")
    };
    let parts = [change_set_part(&[
        inner("a", "POST contacts HTTP/1.1"),
        write_part("b", "PATCH $a HTTP/1.1", "{}"),
    ])];
    let batch = parse(TYPE, &body_of(&parts), 10).unwrap();
    let ids: Vec<_> = batch.parts().map(|p| p.content_id.as_deref()).collect();
    assert_eq!(ids, [Some("a"), Some("b")]);
    let agreeing = write_part("a", "POST contacts HTTP/1.1\nContent-ID: a", "{}");
    assert!(parse(TYPE, &body_of(&[change_set_part(&[agreeing])]), 10).is_ok());
}

#[test]
fn every_refusal() {
    let http =
        |line: &str, extra: &str| format!("Content-Type: application/http\n\n{line}\n{extra}");
    let post = |id: &str, body: &str| write_part(id, "POST contacts HTTP/1.1", body);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"no delimiter here".to_vec(), "has no `--b` delimiter line"),
        (
            b"--b\nContent-Type: application/http\n\nGET x HTTP/1.1\n".to_vec(),
            "ends before the close",
        ),
        (
            body_of(&[post("1", "{\"a\":\"--b\"}")]),
            "boundary `b` appears inside a part",
        ),
        (b"--bx\n--b--".to_vec(), "appears inside a part"),
        (b"preamble --b\n--b--".to_vec(), "appears inside a part"),
        (b"--b--\n--b\n".to_vec(), "appears inside a part"),
        (body_of(&[post("1", "{}\r--b")]), "appears inside a part"),
        (
            body_of(&["Content-Type application/http\n\nGET x HTTP/1.1".into()]),
            "not `Name: value`",
        ),
        (
            body_of(&["Content-Type: application/http\n folded\n\nGET x HTTP/1.1".into()]),
            "folded",
        ),
        (
            body_of(&["Content-Type: application/http\rX: y\n\nGET x HTTP/1.1".into()]),
            "not `Name",
        ),
        (
            body_of(&[http("GET x HTTP/1.1", "A\x00: b\n")]),
            "not `Name: value`",
        ),
        (
            body_of(&[
                "Content-Type: application/http\ncontent-type: application/http\n\nGET x HTTP/1.1"
                    .into(),
            ]),
            "`content-type` header appears more than once",
        ),
        (
            body_of(&["Content-ID: 1\n\nGET x HTTP/1.1".into()]),
            "request 1: the part has no Content-Type",
        ),
        (
            body_of(&["Content-Type: text/plain\n\nGET x HTTP/1.1".into()]),
            "not `text/plain`",
        ),
        (
            body_of(&[
                "Content-Type: application/http\nContent-Transfer-Encoding: base64\n\nR0VU".into(),
            ]),
            "Content-Transfer-Encoding `base64` is not supported",
        ),
        (
            body_of(&[
                "Content-Type: application/http\nContent-Length: 15\n\nGET x HTTP/1.1".into(),
            ]),
            "the `Content-Length` header is not allowed here",
        ),
        (
            body_of(&[http(
                "POST x HTTP/1.1",
                "Transfer-Encoding: chunked\n\n2\n{}\n0\n",
            )]),
            "the `Transfer-Encoding` header is not allowed here",
        ),
        // Part headers are framing: only the ones the format defines pass.
        (
            body_of(&["Content-Type: application/http\nMSCRMCallerID: 1\n\nGET x HTTP/1.1".into()]),
            "the part header `MSCRMCallerID` is not one the gateway understands",
        ),
        (
            body_of(&[
                "Content-Type: application/http\nPrefer: respond-async\n\nGET x HTTP/1.1".into(),
            ]),
            "the part header `Prefer` is not one",
        ),
        (
            body_of(&[change_set_part(&[post("1", "{}")]).replacen(
                "Content-Type: multipart/mixed; boundary=cs\n",
                "Content-Type: multipart/mixed; boundary=cs\nX-HTTP-Method: DELETE\n",
                1,
            )]),
            "the part header `X-HTTP-Method` is not one",
        ),
        (
            body_of(&["Content-Type: application/http".into()]),
            "no HTTP request after its headers",
        ),
        (
            body_of(&["Content-Type: application/http\n\n".into()]),
            "no HTTP request after its headers",
        ),
        (
            body_of(&[http("get x HTTP/1.1", "")]),
            "must be `METHOD target HTTP/1.1`",
        ),
        (
            body_of(&[http("GET x", "")]),
            "must be `METHOD target HTTP/1.1`",
        ),
        (
            body_of(&[http("GET a b HTTP/1.1", "")]),
            "must be `METHOD target HTTP/1.1`",
        ),
        (
            body_of(&[http("GET x HTTP/1.0", "")]),
            "must be `METHOD target HTTP/1.1`",
        ),
        (
            body_of(&[http("GET x HTTP/2", "")]),
            "must be `METHOD target HTTP/1.1`",
        ),
        (
            body_of(&[http("GET x\tHTTP/1.1", "")]),
            "must be `METHOD target HTTP/1.1`",
        ),
        (
            body_of(&[http("POST x HTTP/1.1", "Content-Length: 99\n\n{}")]),
            "Content-Length does not",
        ),
        (
            body_of(&[http("POST x HTTP/1.1", "Content-Length: 2\n\n{}x")]),
            "Content-Length does not",
        ),
        (
            body_of(&[http("POST x HTTP/1.1", "Content-Length: -2\n\n{}")]),
            "Content-Length does not",
        ),
        (
            body_of(&[change_set_part(&[post("1", "{}"), get_part("contacts")])]),
            "request 2: a change set cannot hold a GET request",
        ),
        (
            body_of(&[format!(
                "Content-Type: multipart/mixed; boundary=cs\n\n--cs\n\
            Content-Type: multipart/mixed; boundary=in\n\n--in\n{}\n--in--\n--cs--",
                post("1", "{}")
            )]),
            "request 1: change sets cannot be nested",
        ),
        (
            body_of(&["Content-Type: multipart/mixed; boundary=cs\n\n--cs--".into()]),
            "request 1: a change set must hold at least one request",
        ),
        (
            body_of(&[http("POST $batch HTTP/1.1", "")]),
            "cannot contain another $batch",
        ),
        (
            body_of(&[http(
                "POST http://h/api/data/v9.2/%24BATCH?x=1 HTTP/1.1",
                "",
            )]),
            "another $batch",
        ),
        (
            body_of(&[change_set_part(&[post("1", "{}"), post("1", "{}")])]),
            "request 2: Content-ID `1` is used twice",
        ),
        (
            body_of(&[change_set_part(&[
                write_part("1", "PATCH $2 HTTP/1.1", "{}"),
                post("2", "{}"),
            ])]),
            "request 1: `$2` names no Content-ID defined earlier",
        ),
        (
            body_of(&[http("DELETE $1/primarycontactid/$ref HTTP/1.1", "")]),
            "`$1` names no Content-ID",
        ),
        (
            body_of(&[change_set_part(&[post(
                "1",
                "{\"parentcustomerid_account@odata.bind\":\"$1\"}",
            )])]),
            "`$1` names no Content-ID",
        ),
        (
            body_of(&[
                change_set_part(&[post("1", "{}")]),
                change_set_part(&[post("2", "{\"a\":[{\"b@odata.bind\":[\"$1\"]}]}")]),
            ]),
            "request 2: `$1` names no Content-ID",
        ),
        (
            body_of(&[write_part(
                "1",
                "POST contacts HTTP/1.1\nContent-ID: 2",
                "{}",
            )]),
            "request 1: the `Content-ID` header appears more than once",
        ),
        (
            body_of(&[change_set_part(&[
                post("1", "{}"),
                write_part("2", "PATCH $1?x=1 HTTP/1.1", "{}"),
            ])]),
            "`$1?x=1` names no Content-ID",
        ),
    ];
    for (body, expected) in cases {
        let text = String::from_utf8_lossy(&body).into_owned();
        let err = parse(TYPE, &body, 1000).expect_err(&text).to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}
