//! Streaming rewriter for JSON bodies: a byte-level lexer (strings, escapes, `:`), not a parser.
//!
//! Only the string VALUE of a key that is, or ends with, one of [`ANNOTATIONS`] is rewritten, and
//! only its origin prefix. The state is the last key (at most [`KEY_CAP`] bytes) and the bytes of
//! a possible prefix (at most [`JsonRewriter::max_held_back`]); nothing grows with the body. It never
//! panics, and bytes that are not part of a match pass through unchanged, JSON or not.

use super::origin::{Cursor, Origin, Step};

/// Keys longer than this are never annotation keys (and are not remembered).
pub const KEY_CAP: usize = 256;

/// The annotations whose values are the org's URLs. A key matches when it ends with one of
/// these, which covers `<nav>@odata.nextLink` inside expanded collections.
pub const ANNOTATIONS: [&str; 8] = [
    "@odata.nextLink",
    "@odata.context",
    "@odata.id",
    "@odata.deltaLink",
    "@odata.editLink",
    "@odata.readLink",
    "@odata.navigationLink",
    "@odata.associationLink",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Anything that cannot precede an annotation value.
    Other,
    /// A string that may be a key (`true`: an annotation key).
    Key(bool),
    /// A key and its `:` (`true`: an annotation key).
    Colon(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Between(After),
    /// In a string that may be a key; its bytes are recorded.
    Key {
        escape: bool,
    },
    /// In a string that is passed through.
    Plain {
        escape: bool,
    },
    /// In an annotation value whose start still matches `from`; its bytes are held back.
    Url,
}

/// Rewrites the org's URLs in annotation values of a JSON body fed in chunks of any size.
#[derive(Debug, Clone)]
pub struct JsonRewriter {
    origin: Origin,
    /// `to` without its trailing `/`, escaped as JSON string content.
    to: Box<[u8]>,
    state: State,
    cursor: Cursor,
    held: Vec<u8>,
    key: Vec<u8>,
    key_overflow: bool,
}

impl JsonRewriter {
    /// `from`: the org's base URL (`https://org.crm.dynamics.com`); `to`: the gateway's base for
    /// the tenant (`http://gw:8080/contoso`). An empty `from` rewrites nothing.
    pub fn new(from: &str, to: &str) -> Self {
        let origin = Origin::new(from);
        let held = Vec::with_capacity(origin.max_raw_len());
        Self {
            origin,
            to: escape_json(to.trim_end_matches('/')).into(),
            state: State::Between(After::Other),
            cursor: Cursor::default(),
            held,
            key: Vec::with_capacity(KEY_CAP),
            key_overflow: false,
        }
    }

    /// Appends the rewritten form of `chunk` to `out`, except bytes that might still be the start
    /// of a URL to rewrite (see [`Self::held_back`]).
    ///
    /// Outside annotation values every byte passes through unchanged: the lexer only tracks its
    /// state over such runs (string contents are skipped to the next `"` or `\\`), and the run is
    /// copied to `out` in one go when something else has to be written.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        // `chunk[copied..i]` has been lexed and goes out unchanged.
        let mut copied = 0;
        let mut i = 0;
        while let Some(&b) = chunk.get(i) {
            i = match self.state {
                State::Url => {
                    out.extend_from_slice(&chunk[copied..i]);
                    self.url_byte(b, out);
                    copied = i + 1;
                    i + 1
                }
                State::Plain { escape: false } => {
                    let j = string_end(chunk, i);
                    if let Some(&end) = chunk.get(j) {
                        self.state = match end {
                            b'"' => State::Between(After::Other),
                            _ => State::Plain { escape: true },
                        };
                    }
                    j + 1
                }
                State::Plain { escape: true } => {
                    self.state = State::Plain { escape: false };
                    i + 1
                }
                State::Key { escape: false } => {
                    let j = string_end(chunk, i);
                    self.record_key_bytes(&chunk[i..j.min(chunk.len())]);
                    if let Some(&end) = chunk.get(j) {
                        self.state = match end {
                            b'"' => State::Between(After::Key(self.is_annotation_key())),
                            _ => {
                                self.record_key_byte(end);
                                State::Key { escape: true }
                            }
                        };
                    }
                    j + 1
                }
                State::Key { escape: true } => {
                    self.record_key_byte(b);
                    self.state = State::Key { escape: false };
                    i + 1
                }
                State::Between(after) => self.between_run(after, chunk, i),
            };
        }
        out.extend_from_slice(&chunk[copied..]);
    }

    /// Lexes the bytes between strings (punctuation, whitespace, numbers, literals) from `i` up
    /// to and including the next `"`; returns the index after it.
    fn between_run(&mut self, mut after: After, chunk: &[u8], i: usize) -> usize {
        let j = chunk[i..]
            .iter()
            .position(|&b| b == b'"')
            .map_or(chunk.len(), |n| i + n);
        for &b in &chunk[i..j] {
            after = match (after, b) {
                (_, b' ' | b'\t' | b'\n' | b'\r') => after,
                (After::Key(annotation), b':') => After::Colon(annotation),
                _ => After::Other,
            };
        }
        self.state = match (after, j < chunk.len()) {
            (_, false) => State::Between(after),
            (After::Colon(true), true) if !self.origin.is_empty() => {
                self.cursor = Cursor::default();
                State::Url
            }
            (After::Colon(_), true) => State::Plain { escape: false },
            (_, true) => {
                self.key.clear();
                self.key_overflow = false;
                State::Key { escape: false }
            }
        };
        j + 1
    }

    /// Ends the body: releases held-back bytes unchanged (the string never ended) and resets.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Between(After::Other);
        self.cursor = Cursor::default();
    }

    /// Bytes currently held back; never more than [`Self::max_held_back`].
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    /// The bound on [`Self::held_back`]: `from`'s length, plus one per `/` in it (it may arrive
    /// as `\/`), plus one (the `\` of the `\/` that follows it).
    pub fn max_held_back(&self) -> usize {
        self.origin.max_raw_len()
    }

    fn url_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        let was_escape = self.cursor.is_escaping();
        if b == b'"' && !was_escape {
            if self.cursor.is_complete(&self.origin) {
                self.held.clear();
                out.extend_from_slice(&self.to);
            }
            out.append(&mut self.held);
            out.push(b);
            self.state = State::Between(After::Other);
            return;
        }
        match self.cursor.step(&self.origin, b) {
            Step::Hold => self.held.push(b),
            Step::Mismatch => {
                out.append(&mut self.held);
                out.push(b);
                self.state = State::Plain {
                    escape: !was_escape && b == b'\\',
                };
            }
            Step::Matched { escaped } => {
                self.held.clear();
                out.extend_from_slice(&self.to);
                out.extend_from_slice(if escaped { b"\\/" } else { b"/" });
                self.state = State::Plain { escape: false };
            }
        }
    }

    fn record_key_byte(&mut self, b: u8) {
        self.record_key_bytes(&[b]);
    }

    fn record_key_bytes(&mut self, bytes: &[u8]) {
        let room = KEY_CAP - self.key.len();
        if bytes.len() > room {
            self.key_overflow = true;
        }
        self.key.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Called on the key's closing quote. Every annotation starts with its only `@`, so the key
    /// ends with one exactly when its part from the last `@` is one.
    fn is_annotation_key(&self) -> bool {
        let at = self.key.iter().rposition(|&b| b == b'@');
        !self.key_overflow
            && at.is_some_and(|i| ANNOTATIONS.iter().any(|a| self.key[i..] == *a.as_bytes()))
    }
}

/// The index of the next `"` or `\\` at or after `i` (the end of a string's plain run), or
/// `chunk.len()`.
fn string_end(chunk: &[u8], i: usize) -> usize {
    chunk[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map_or(chunk.len(), |n| i + n)
}

/// `to` as JSON string content: a URL needs no escaping, but a stray `"`, `\` or control byte
/// must not break the document.
fn escape_json(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
    fn keys_over_the_cap_are_not_annotation_keys() {
        let at_cap = format!(
            "{}@odata.nextLink",
            "n".repeat(KEY_CAP - "@odata.nextLink".len())
        );
        let over = format!("n{at_cap}");
        assert_rewrites(
            &format!(r#"{{"{at_cap}":"{FROM}/a"}}"#),
            &format!(r#"{{"{at_cap}":"{TO}/a"}}"#),
        );
        assert_untouched(&format!(r#"{{"{over}":"{FROM}/a"}}"#));
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
}
