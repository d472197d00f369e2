//! The JSON rewriter's behaviour on hand-written bodies: what is rewritten, what is not.

use super::*;

const FROM: &str = "https://org.crm.dynamics.com";
const TO: &str = "http://gw.local:8080/contoso";

fn rewrite(input: &str) -> String {
    let mut rewriter = JsonRewriter::new(FROM, TO);
    let mut out = Vec::new();
    rewriter.push(input.as_bytes(), &mut out);
    rewriter.finish(&mut out);
    String::from_utf8(out).expect("utf-8 in, utf-8 out")
}

fn assert_rewrites(input: &str, want: &str) {
    assert_eq!(rewrite(input), want, "input: {input}");
}

fn assert_untouched(input: &str) {
    assert_rewrites(input, input);
}

#[test]
fn every_annotation_is_rewritten() {
    for key in ANNOTATIONS {
        assert_rewrites(
            &format!(r#"{{"{key}":"{FROM}/api/data/v9.2/accounts?$skiptoken=1"}}"#),
            &format!(r#"{{"{key}":"{TO}/api/data/v9.2/accounts?$skiptoken=1"}}"#),
        );
    }
}

#[test]
fn annotations_nested_in_objects_and_arrays_and_behind_navigation_names() {
    let input = format!(
        r#"{{"value":[{{"a":{{"@odata.id":"{FROM}/x"}}}},{{"contact_customer_accounts@odata.nextLink":"{FROM}/api/contacts?$skiptoken=2"}}]}}"#
    );
    let want = format!(
        r#"{{"value":[{{"a":{{"@odata.id":"{TO}/x"}}}},{{"contact_customer_accounts@odata.nextLink":"{TO}/api/contacts?$skiptoken=2"}}]}}"#
    );
    assert_rewrites(&input, &want);
}

#[test]
fn data_strings_containing_the_org_url_are_untouched() {
    assert_untouched(&format!(
        r#"{{"websiteurl":"{FROM}/api","x":["{FROM}/y"],"{FROM}/k":1}}"#
    ));
    assert_untouched(&format!(
        r#"{{"note":"\"@odata.nextLink\":\"{FROM}/api\""}}"#
    ));
    assert_untouched(&format!(r#"["@odata.nextLink","{FROM}/api"]"#));
    assert_untouched(&format!(
        r#"{{"@odata.nextLinkX":"{FROM}/api","@odata.count":"{FROM}/a"}}"#
    ));
    assert_untouched(&format!(r#"{{"@odata.nextLink":null,"next":"{FROM}/a"}}"#));
}

#[test]
fn only_the_prefix_is_rewritten() {
    assert_untouched(&format!(r#"{{"@odata.id":"see {FROM}/api"}}"#));
    assert_rewrites(
        &format!(r#"{{"@odata.id":"{FROM}/a?u={FROM}/b"}}"#),
        &format!(r#"{{"@odata.id":"{TO}/a?u={FROM}/b"}}"#),
    );
}

#[test]
fn keys_with_escaped_quotes_are_lexed_as_keys() {
    assert_rewrites(
        &format!(r#"{{"we\"ird@odata.nextLink":"{FROM}/a","q\\":"{FROM}/b"}}"#),
        &format!(r#"{{"we\"ird@odata.nextLink":"{TO}/a","q\\":"{FROM}/b"}}"#),
    );
}

#[test]
fn escaped_slashes_match_and_stay_escaped_after_the_prefix() {
    assert_rewrites(
        r#"{"@odata.nextLink":"https:\/\/org.crm.dynamics.com\/api\/data"}"#,
        &format!(r#"{{"@odata.nextLink":"{TO}\/api\/data"}}"#),
    );
    assert_untouched(r#"{"@odata.id":"https:\/\/org.crm.dynamics.com\u002fapi"}"#);
    assert_untouched(r#"{"@odata.id":"https:\/\/org.crm.dynamics.com\"\/"}"#);
}

#[test]
fn whitespace_around_the_colon() {
    assert_rewrites(
        &format!("{{ \"@odata.context\" \n:\t \"{FROM}/$metadata#accounts\" }}"),
        &format!("{{ \"@odata.context\" \n:\t \"{TO}/$metadata#accounts\" }}"),
    );
}

#[test]
fn scheme_and_host_compare_case_insensitively() {
    assert_rewrites(
        r#"{"@odata.id":"HTTPS://ORG.CRM.Dynamics.com/api/Accounts(1)"}"#,
        &format!(r#"{{"@odata.id":"{TO}/api/Accounts(1)"}}"#),
    );
}

#[test]
fn lookalike_hosts_and_other_followers_do_not_match() {
    for value in [
        ".evil.net/api",
        ":8443/api",
        "x",
        "?a=1",
        "#f",
        "\\\\",
        "\\n",
    ] {
        assert_untouched(&format!(r#"{{"@odata.nextLink":"{FROM}{value}"}}"#));
    }
    assert_untouched(r#"{"@odata.nextLink":"https://org.crm.dynamics.co"}"#);
    assert_untouched(r#"{"@odata.nextLink":"http://org.crm.dynamics.com/api"}"#);
    assert_untouched(r#"{"@odata.nextLink":""}"#);
}

#[test]
fn a_value_that_is_exactly_the_origin_matches() {
    assert_rewrites(
        &format!(r#"{{"@odata.id":"{FROM}"}}"#),
        &format!(r#"{{"@odata.id":"{TO}"}}"#),
    );
}

#[test]
fn long_keys_are_annotation_keys_by_their_end_in_any_chunking() {
    let key = format!("{}@odata.nextLink", "n".repeat(1000));
    let input = format!(r#"{{"{key}":"{FROM}/a","{key}x":"{FROM}/b"}}"#);
    let want = format!(r#"{{"{key}":"{TO}/a","{key}x":"{FROM}/b"}}"#);
    assert_rewrites(&input, &want);
    for cut in [1000, 1005, 1010, 1015, 1016, 1017, 1018] {
        let mut rewriter = JsonRewriter::new(FROM, TO);
        let mut out = Vec::new();
        rewriter.push(&input.as_bytes()[..cut], &mut out);
        rewriter.push(&input.as_bytes()[cut..], &mut out);
        rewriter.finish(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want, "cut at {cut}");
    }
}

#[test]
fn to_is_escaped_as_json_string_content() {
    let mut rewriter = JsonRewriter::new(FROM, "http://gw/\"q\\\u{1}/");
    let mut out = Vec::new();
    rewriter.push(
        format!(r#"{{"@odata.id":"{FROM}/a"}}"#).as_bytes(),
        &mut out,
    );
    assert_eq!(out, br#"{"@odata.id":"http://gw/\"q\\\u0001/a"}"#);
}

#[test]
fn an_unterminated_value_is_released_unchanged_at_finish() {
    let mut rewriter = JsonRewriter::new(FROM, TO);
    let mut out = Vec::new();
    rewriter.push(
        br#"{"@odata.id":"https:\/\/org.crm.dynamics.com\"#,
        &mut out,
    );
    assert_eq!(
        rewriter.held_back(),
        rewriter.max_held_back(),
        "the bound is reached"
    );
    assert_eq!(rewriter.max_held_back(), FROM.len() + 3);
    rewriter.finish(&mut out);
    assert_eq!(out, br#"{"@odata.id":"https:\/\/org.crm.dynamics.com\"#);
    assert_eq!(rewriter.held_back(), 0);
}

#[test]
fn an_empty_from_rewrites_nothing() {
    let mut rewriter = JsonRewriter::new("", TO);
    let mut out = Vec::new();
    rewriter.push(br#"{"@odata.id":"/a"}"#, &mut out);
    assert_eq!(out, br#"{"@odata.id":"/a"}"#);
}

/// `push_last` against `push` and `finish` for origins whose first byte is not a letter, is a
/// `/` (a match may then start with the `\` of `\/`, so no early stop), is configured in upper
/// case, or is missing, on bodies with the URL written plainly, escaped, in another case, cut
/// anywhere.
#[test]
fn the_last_chunk_gives_the_same_bytes_for_any_origin() {
    use crate::proxy::rewrite::tests::{feed_json, feed_json_last};
    for from in [
        "",
        "/api",
        "HTTPS://ORG.crm.dynamics.com",
        "https://org.crm.dynamics.com/",
        "1.2.3.4:8080",
        "x",
    ] {
        let escaped = from.replace('/', "\\/");
        let upper = from.to_ascii_uppercase();
        for url in [from, escaped.as_str(), upper.as_str()] {
            // With rows after the URLs too, so that `push_last` stops lexing early.
            let rows = r#","value":[{"k":"v"},{"k":"w"}]"#.repeat(6);
            let input = format!(
                r#"{{"@odata.context":"{url}/a","v":["h","{url}"],"@odata.nextLink":"{url}/n","@odata.id":"{url}"{rows}}}"#
            );
            for cut in 0..=input.len() {
                assert_eq!(
                    feed_json_last(input.as_bytes(), &[cut], from, TO),
                    feed_json(input.as_bytes(), &[cut], from, TO),
                    "{from} {input} cut at {cut}"
                );
            }
        }
    }
}

/// `is_annotation`'s dispatch on the last byte against the plain definition (ends with one of
/// [`ANNOTATIONS`]) on every annotation behind prefixes, cut short, and with each byte changed.
#[test]
fn annotation_keys_are_exactly_the_strings_ending_with_an_annotation() {
    let plain = |raw: &[u8]| ANNOTATIONS.iter().any(|a| raw.ends_with(a.as_bytes()));
    let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"contactid".to_vec(), b"Link".to_vec()];
    for a in ANNOTATIONS {
        for prefix in ["", "x", "contact_accounts", "@", "@odata.", "\\\""] {
            let whole = format!("{prefix}{a}").into_bytes();
            for cut in 0..=whole.len() {
                cases.push(whole[..cut].to_vec());
                cases.push(whole[cut..].to_vec());
            }
            for at in 0..whole.len() {
                for b in [b'x', b'@', b'.', b'k', b't', b'd', b'L'] {
                    let mut changed = whole.clone();
                    changed[at] = b;
                    cases.push(changed);
                }
            }
        }
    }
    for raw in &cases {
        assert_eq!(
            is_annotation(raw),
            plain(raw),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(ANNOTATIONS.iter().all(|a| is_annotation(a.as_bytes())));
}
