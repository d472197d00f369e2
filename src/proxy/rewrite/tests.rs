//! Properties of the streaming rewriters over realistic Dataverse bodies and generated input:
//! chunking never changes the output, JSON stays JSON with exactly the annotation values
//! rewritten, garbage passes through, and the held-back bytes stay within their bound.

use serde_json::Value;

use super::json::ANNOTATIONS;
use super::{JsonRewriter, TextRewriter, rewrite_url};

pub(super) const FROM: &str = "https://org.crm.dynamics.com";
pub(super) const TO: &str = "http://gw.local:8080/contoso";

/// Realistic Dataverse JSON bodies (compact, pretty, escaped, with lookalikes and data URLs).
pub(super) const JSON_BODIES: [&str; 8] = [
    r##"{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts(name,websiteurl)","@Microsoft.Dynamics.CRM.totalrecordcount":-1,"@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded":false,"value":[{"@odata.etag":"W/\"1234567\"","name":"Contoso Ltd (sample)","websiteurl":"https://org.crm.dynamics.com/main.aspx?etn=account","accountid":"7d577253-3ef0-4a0a-bb7f-8335c2596e70"},{"@odata.etag":"W/\"1234568\"","name":"Fabrikam — ünïcödé \ud83d\ude00","websiteurl":null,"accountid":"8d577253-3ef0-4a0a-bb7f-8335c2596e70"}],"@odata.nextLink":"https://org.crm.dynamics.com/api/data/v9.2/accounts?$select=name,websiteurl&$skiptoken=%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%253c%252fcookie%253e%22%20istracking=%22False%22%20/%3E"}"##,
    r##"{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts(name,contact_customer_accounts(fullname))","value":[{"@odata.etag":"W/\"1\"","name":"A","accountid":"7d577253-3ef0-4a0a-bb7f-8335c2596e70","contact_customer_accounts":[{"@odata.etag":"W/\"2\"","fullname":"Yvonne McKay (sample)","contactid":"4b0d3a2c-3ef0-4a0a-bb7f-8335c2596e70"}],"contact_customer_accounts@odata.nextLink":"https://org.crm.dynamics.com/api/data/v9.2/accounts(7d577253-3ef0-4a0a-bb7f-8335c2596e70)/contact_customer_accounts?$select=fullname&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"}]}"##,
    r##"{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#contacts/$entity","@odata.type":"#Microsoft.Dynamics.CRM.contact","@odata.id":"https://org.crm.dynamics.com/api/data/v9.2/contacts(4b0d3a2c-3ef0-4a0a-bb7f-8335c2596e70)","@odata.etag":"W/\"9\"","@odata.editLink":"contacts(4b0d3a2c-3ef0-4a0a-bb7f-8335c2596e70)","fullname":"X","parentcustomerid_account@odata.associationLink":"https://org.crm.dynamics.com/api/data/v9.2/contacts(4b0d3a2c)/parentcustomerid_account/$ref","parentcustomerid_account@odata.navigationLink":"https://org.crm.dynamics.com/api/data/v9.2/contacts(4b0d3a2c)/parentcustomerid_account","description":"Moved from https://org.crm.dynamics.com/api/data/v9.2/ on 2024-01-01","_parentcustomerid_value@OData.Community.Display.V1.FormattedValue":"Contoso","numberofemployees":42,"revenue":1.5e6,"donotemail":false}"##,
    r##"{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts(name)/$delta","value":[{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts/$deletedEntity","id":"7d577253-3ef0-4a0a-bb7f-8335c2596e70","reason":"deleted"}],"@odata.deltaLink":"https://org.crm.dynamics.com/api/data/v9.2/accounts?$select=name&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"}"##,
    "{\n  \"@odata.context\" : \"https:\\/\\/ORG.crm.dynamics.com\\/api\\/data\\/v9.2\\/$metadata#contacts\",\n  \"value\" : [ {\n    \"@odata.id\" :\t\"HTTPS://org.CRM.dynamics.com/api/data/v9.2/contacts(1)\",\n    \"weird\\\"key@odata.id\" : \"https://org.crm.dynamics.com/x\",\n    \"emailaddress1\" : \"someone@example.com\"\n  } ],\n  \"@odata.nextLink\" : \"https://org.crm.dynamics.com.evil.net/api/data/v9.2/contacts?$skiptoken=2\",\n  \"@odata.readLink\": \"https://org.crm.dynamics.com:444/x\",\n  \"@odata.id\": \"https://org.crm.dynamics.com\"\n}\n",
    r##"{"error":{"code":"0x80040220","message":"Principal user (Id=1, type=8) is missing prvReadAccount privilege; see https://org.crm.dynamics.com/api/data/v9.2/"}}"##,
    r##"{"@odata.context":"https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts","value":[]}"##,
    r##"{"note":"line1\nline2 \\ \"q\" \u00e9 \/ https:\/\/org.crm.dynamics.com\/","@odata.nextLink":"https:\/\/org.crm.dynamics.com\/api?x=\"y\"\\"}"##,
];

/// A `$batch` response; `$ORG` marks the origins that must be rewritten.
const BATCH_TEMPLATE: &str = "--batchresponse_c1bd45c1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1\r\n\r\n--changesetresponse_ff83b4f1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\nLocation: $ORG/api/data/v9.2/tasks(a59c24b3-0c44-e911-a829-000d3a1a3dcb)\r\nOData-EntityId: $ORG/api/data/v9.2/tasks(a59c24b3-0c44-e911-a829-000d3a1a3dcb)\r\n\r\n\r\n--changesetresponse_ff83b4f1--\r\n--batchresponse_c1bd45c1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n{\"@odata.context\":\"$ORG/api/data/v9.2/$metadata#tasks\",\"value\":[{\"subject\":\"https://org.crm.dynamics.com.evil.net/x\"}],\"@odata.nextLink\":\"$ORG/api/data/v9.2/tasks?$skiptoken=2\",\"home\":\"$ORG\"}\r\n--batchresponse_c1bd45c1--\r\n";

/// Feeds `input` cut at `cuts` (ascending), checking the hold-back bound after every push.
pub(super) fn feed_json(input: &[u8], cuts: &[usize], from: &str, to: &str) -> Vec<u8> {
    let mut rewriter = JsonRewriter::new(from, to);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        rewriter.push(&input[start..cut], &mut out);
        assert!(rewriter.held_back() <= rewriter.max_held_back());
        start = cut;
    }
    rewriter.finish(&mut out);
    out
}

/// [`feed_json`] with the last piece given to [`JsonRewriter::push_last`] instead of `push` and
/// `finish`.
pub(super) fn feed_json_last(input: &[u8], cuts: &[usize], from: &str, to: &str) -> Vec<u8> {
    let mut rewriter = JsonRewriter::new(from, to);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        rewriter.push(&input[start..cut], &mut out);
        start = cut;
    }
    rewriter.push_last(&input[start..], &mut out);
    assert_eq!(rewriter.held_back(), 0, "nothing held after the last chunk");
    out
}

fn feed_text(input: &[u8], cuts: &[usize], from: &str, to: &str) -> Vec<u8> {
    let mut rewriter = TextRewriter::new(from, to);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        rewriter.push(&input[start..cut], &mut out);
        assert!(rewriter.held_back() <= rewriter.max_held_back());
        start = cut;
    }
    rewriter.finish(&mut out);
    out
}

/// Every 2-way split and 1-byte-at-a-time give the same output as one push.
fn assert_chunking_is_invisible(feed: fn(&[u8], &[usize], &str, &str) -> Vec<u8>, input: &[u8]) {
    let whole = feed(input, &[], FROM, TO);
    for cut in 0..=input.len() {
        assert_eq!(feed(input, &[cut], FROM, TO), whole, "split at {cut}");
    }
    let every_byte: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        feed(input, &every_byte, FROM, TO),
        whole,
        "one byte at a time"
    );
}

/// The reference: the same rewrite done on the parsed document.
fn rewrite_tree(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(rewrite_tree),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let annotation = ANNOTATIONS.iter().any(|a| key.ends_with(a));
                match item {
                    Value::String(s) if annotation => {
                        if let Some(new) = rewrite_url(s, FROM, TO) {
                            *s = new;
                        }
                    }
                    _ => rewrite_tree(item),
                }
            }
        }
        _ => {}
    }
}

#[test]
fn json_bodies_chunked_any_way_rewrite_exactly_the_annotations() {
    for body in JSON_BODIES {
        assert_chunking_is_invisible(feed_json, body.as_bytes());
        let out = feed_json(body.as_bytes(), &[], FROM, TO);
        let got: Value = serde_json::from_slice(&out).expect("output is valid JSON");
        let mut want: Value = serde_json::from_str(body).expect("corpus is valid JSON");
        rewrite_tree(&mut want);
        assert_eq!(got, want, "body: {body}");
    }
}

#[test]
fn the_corpus_does_exercise_rewrites_and_lookalikes() {
    let out = String::from_utf8(feed_json(JSON_BODIES[4].as_bytes(), &[], FROM, TO)).unwrap();
    assert_eq!(out.matches(TO).count(), 4, "{out}");
    assert!(out.contains("https://org.crm.dynamics.com.evil.net/"));
    assert!(out.contains("https://org.crm.dynamics.com:444/x"));
    let untouched = JSON_BODIES[5].as_bytes();
    assert_eq!(feed_json(untouched, &[], FROM, TO), untouched);
}

#[test]
fn batch_bodies_chunked_any_way_rewrite_every_origin() {
    let input = BATCH_TEMPLATE.replace("$ORG", FROM);
    assert_chunking_is_invisible(feed_text, input.as_bytes());
    let want = BATCH_TEMPLATE.replace("$ORG", TO);
    assert_eq!(
        String::from_utf8(feed_text(input.as_bytes(), &[], FROM, TO)).unwrap(),
        want
    );
}

/// A small deterministic generator (tests must not depend on a random seed).
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    pub(super) fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const TOKENS: [&str; 18] = [
    "\"",
    ":",
    " ",
    "{",
    "}",
    "[",
    ",",
    "@odata.nextLink",
    "@odata.id",
    FROM,
    "/",
    "https:",
    "//",
    "h",
    "x",
    "é",
    ".evil",
    "\n",
];

fn garbage(rng: &mut Lcg, tokens: &[&str], with_raw_bytes: bool) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..rng.below(60) {
        if with_raw_bytes && rng.below(4) == 0 {
            input.push(rng.below(256) as u8);
        } else {
            input.extend_from_slice(tokens[rng.below(tokens.len())].as_bytes());
        }
    }
    input
}

#[test]
fn garbage_never_panics_and_chunking_stays_invisible() {
    let mut rng = Lcg(7);
    let tokens: Vec<&str> = TOKENS
        .iter()
        .copied()
        .chain(["\\", "\\/", "\\\"", "HTTPS://ORG.CRM.DYNAMICS.COM"])
        .collect();
    for _ in 0..400 {
        let input = garbage(&mut rng, &tokens, true);
        let cuts = [rng.below(input.len() + 1)];
        let every_byte: Vec<usize> = (1..input.len()).collect();
        let json = feed_json(&input, &[], FROM, TO);
        assert_eq!(feed_json(&input, &cuts, FROM, TO), json);
        assert_eq!(feed_json(&input, &every_byte, FROM, TO), json);
        let text = feed_text(&input, &[], FROM, TO);
        assert_eq!(feed_text(&input, &cuts, FROM, TO), text);
        assert_eq!(feed_text(&input, &every_byte, FROM, TO), text);
    }
}

#[test]
fn rewriting_an_origin_to_itself_changes_nothing_but_matches() {
    // Without escapes or case variants, a match's raw bytes are `from` itself, so any byte that
    // changed would be a byte the rewriter damaged.
    let mut rng = Lcg(11);
    for _ in 0..400 {
        let input = garbage(&mut rng, &TOKENS, false);
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(feed_json(&input, &every_byte, FROM, FROM), input);
        assert_eq!(feed_text(&input, &every_byte, FROM, FROM), input);
    }
}

#[test]
fn twenty_megabytes_stream_with_bounded_state() {
    let record = format!(
        r#"{{"@odata.etag":"W/\"1\"","name":"{}","websiteurl":"{FROM}/x","nav@odata.nextLink":"{FROM}/api/data/v9.2/a?$skiptoken=1"}},"#,
        "n".repeat(200)
    );
    let head = format!(r#"{{"@odata.context":"{FROM}/api/data/v9.2/$metadata#accounts","value":["#);
    let records = 20_000_000 / record.len();
    let mut rewriter = JsonRewriter::new(FROM, TO);
    let (mut out, mut total_in, mut total_out, mut rewritten) = (Vec::new(), 0, 0, 0);
    let mut push = |bytes: &[u8], rewriter: &mut JsonRewriter| {
        for piece in bytes.chunks(64 * 1024 - 7) {
            rewriter.push(piece, &mut out);
            assert!(rewriter.held_back() <= rewriter.max_held_back());
            total_in += piece.len();
            total_out += out.len();
            rewritten += count(&out, TO.as_bytes());
            out.clear();
        }
    };
    push(head.as_bytes(), &mut rewriter);
    push(record.repeat(records).as_bytes(), &mut rewriter);
    push(
        format!(
            r#"{{}}],"@odata.nextLink":"{FROM}/{}"}}"#,
            "s".repeat(5_000_000)
        )
        .as_bytes(),
        &mut rewriter,
    );
    rewriter.finish(&mut out);
    assert!(out.is_empty() && total_in > 24_000_000, "{total_in}");
    assert_eq!(
        rewritten,
        1 + records + 1,
        "context, one nextLink per record, the final one"
    );
    assert_eq!(total_out, total_in + (rewritten * (TO.len() - FROM.len())));
}

/// Occurrences of `needle` (none in this test straddle a flushed `out`: `to` is emitted whole).
fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
