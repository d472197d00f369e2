//! Streaming rewriter for JSON bodies: a byte-level lexer (strings, escapes, `:`), not a parser.
//!
//! Only the string VALUE of a key that ends with one of [`ANNOTATIONS`] is rewritten, and only
//! its origin prefix. The state is the last [`TAIL`] raw bytes of the current string (enough to
//! recognise an annotation key) and the bytes of a possible prefix (at most
//! [`JsonRewriter::max_held_back`]); nothing grows with the body. It never panics, and bytes
//! that are not part of a match pass through unchanged, JSON or not.
//!
//! Cost: outside annotation values the lexer only looks for the next `"` (between strings) and
//! the next `"` or `\` (inside one), with `memchr`; the bytes in between are copied once, in
//! runs. A string's end costs a suffix check; only after an annotation key are the bytes up to
//! its value looked at one by one.

use std::sync::Arc;

use super::origin::{Cursor, Origin, Step};

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

/// How many trailing raw bytes of a string decide whether it is an annotation key: the length
/// of the longest annotation.
pub const TAIL: usize = 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Anything that cannot precede an annotation value.
    Other,
    /// An annotation key.
    Key,
    /// An annotation key and its `:`.
    Colon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Between(After),
    /// In a string (key or value; which one only matters after an annotation key). `escape`:
    /// the chunk ended right after a `\`.
    Str {
        escape: bool,
    },
    /// In an annotation value whose start still matches `from`; its bytes are held back.
    Url,
}

/// What a JSON body is rewritten from and to, prepared once (per tenant and gateway origin) and
/// shared by the rewriters of every response.
#[derive(Debug)]
pub struct JsonTarget {
    origin: Origin,
    /// `to` without its trailing `/`, escaped as JSON string content.
    to: Box<[u8]>,
}

impl JsonTarget {
    /// See [`JsonRewriter::new`].
    pub fn new(from: &str, to: &str) -> Arc<JsonTarget> {
        Arc::new(JsonTarget {
            origin: Origin::new(from),
            to: escape_json(to.trim_end_matches('/')).into(),
        })
    }
}

/// Rewrites the org's URLs in annotation values of a JSON body fed in chunks of any size.
#[derive(Debug, Clone)]
pub struct JsonRewriter {
    target: Arc<JsonTarget>,
    state: State,
    cursor: Cursor,
    held: Vec<u8>,
    /// The last raw bytes of the current string that arrived in earlier chunks.
    tail: [u8; TAIL],
    tail_len: usize,
}

impl JsonRewriter {
    /// `from`: the org's base URL (`https://org.crm.dynamics.com`); `to`: the gateway's base for
    /// the tenant (`http://gw:8080/contoso`). An empty `from` rewrites nothing.
    pub fn new(from: &str, to: &str) -> Self {
        Self::with_target(JsonTarget::new(from, to))
    }

    pub fn with_target(target: Arc<JsonTarget>) -> Self {
        Self {
            target,
            state: State::Between(After::Other),
            cursor: Cursor::default(),
            held: Vec::new(),
            tail: [0; TAIL],
            tail_len: 0,
        }
    }

    /// Appends the rewritten form of `chunk` to `out`, except bytes that might still be the start
    /// of a URL to rewrite (see [`Self::held_back`]).
    ///
    /// Outside annotation values every byte passes through unchanged: the lexer only tracks its
    /// state over such runs, and the run is copied to `out` in one go when something else has
    /// to be written.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        // `chunk[copied..i]` has been lexed and goes out unchanged.
        let mut copied = 0;
        let mut i = 0;
        // Where the current string's bytes start in this chunk (earlier ones are in `tail`).
        let mut start = 0;
        while i < chunk.len() {
            match self.state {
                State::Url => {
                    out.extend_from_slice(&chunk[copied..i]);
                    if self.url_byte(chunk[i], out) {
                        start = i + 1;
                        self.tail_len = 0;
                    }
                    copied = i + 1;
                    i += 1;
                }
                State::Str { escape: true } => {
                    self.state = State::Str { escape: false };
                    i += 1;
                }
                State::Str { escape: false } => match find2(b'"', b'\\', &chunk[i..]) {
                    None => i = chunk.len(),
                    Some(n) if chunk[i + n] == b'\\' => {
                        i += n + 2;
                        if i > chunk.len() {
                            self.state = State::Str { escape: true };
                        }
                    }
                    Some(n) => {
                        let end = i + n;
                        let key = self.ends_with_annotation(&chunk[start..end]);
                        self.state = State::Between(if key { After::Key } else { After::Other });
                        i = end + 1;
                    }
                },
                State::Between(After::Other) => match find(b'"', &chunk[i..]) {
                    None => i = chunk.len(),
                    Some(n) => {
                        i += n + 1;
                        self.open_string(&mut start, i);
                    }
                },
                State::Between(after) => {
                    let b = chunk[i];
                    i += 1;
                    self.state = match (after, b) {
                        (_, b' ' | b'\t' | b'\n' | b'\r') => State::Between(after),
                        (After::Key, b':') => State::Between(After::Colon),
                        (After::Colon, b'"') if !self.target.origin.is_empty() => {
                            self.cursor = Cursor::default();
                            if self.held.capacity() == 0 {
                                // Once per body, at its bound: never grown byte by byte.
                                self.held.reserve(self.target.origin.max_raw_len());
                            }
                            State::Url
                        }
                        (_, b'"') => {
                            self.open_string(&mut start, i);
                            self.state
                        }
                        _ => State::Between(After::Other),
                    };
                }
            }
        }
        if matches!(self.state, State::Str { .. }) {
            self.keep_tail(&chunk[start.min(chunk.len())..]);
        }
        out.extend_from_slice(&chunk[copied..]);
    }

    /// A string opens at `at` (the byte after its `"`).
    fn open_string(&mut self, start: &mut usize, at: usize) {
        self.state = State::Str { escape: false };
        self.tail_len = 0;
        *start = at;
    }

    /// Keeps the last [`TAIL`] bytes of `tail ++ bytes`.
    fn keep_tail(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL {
            self.tail.copy_from_slice(&bytes[bytes.len() - TAIL..]);
            self.tail_len = TAIL;
            return;
        }
        let keep = (TAIL - bytes.len()).min(self.tail_len);
        self.tail
            .copy_within(self.tail_len - keep..self.tail_len, 0);
        self.tail[keep..keep + bytes.len()].copy_from_slice(bytes);
        self.tail_len = keep + bytes.len();
    }

    /// Whether the string made of `tail` and then `last` (raw bytes) ends with an annotation.
    fn ends_with_annotation(&self, last: &[u8]) -> bool {
        // Every annotation ends in `k`, `t` or `d`; most strings are out after one comparison.
        let final_byte = last
            .last()
            .or_else(|| self.tail[..self.tail_len].last())
            .copied();
        if !matches!(final_byte, Some(b'k' | b't' | b'd')) {
            return false;
        }
        let mut joined = [0u8; TAIL];
        let suffix: &[u8] = if last.len() >= TAIL || self.tail_len == 0 {
            last
        } else {
            let keep = (TAIL - last.len()).min(self.tail_len);
            joined[..keep].copy_from_slice(&self.tail[self.tail_len - keep..self.tail_len]);
            joined[keep..keep + last.len()].copy_from_slice(last);
            &joined[..keep + last.len()]
        };
        ANNOTATIONS.iter().any(|a| suffix.ends_with(a.as_bytes()))
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
        self.target.origin.max_raw_len()
    }

    /// Lexes one byte of an annotation value; `true` when the value goes on as a plain string
    /// from the next byte.
    fn url_byte(&mut self, b: u8, out: &mut Vec<u8>) -> bool {
        let was_escape = self.cursor.is_escaping();
        if b == b'"' && !was_escape {
            if self.cursor.is_complete(&self.target.origin) {
                self.held.clear();
                out.extend_from_slice(&self.target.to);
            }
            out.append(&mut self.held);
            out.push(b);
            self.state = State::Between(After::Other);
            return false;
        }
        match self.cursor.step(&self.target.origin, b) {
            Step::Hold => {
                self.held.push(b);
                false
            }
            Step::Mismatch => {
                out.append(&mut self.held);
                out.push(b);
                self.state = State::Str {
                    escape: !was_escape && b == b'\\',
                };
                true
            }
            Step::Matched { escaped } => {
                self.held.clear();
                out.extend_from_slice(&self.target.to);
                out.extend_from_slice(if escaped { b"\\/" } else { b"/" });
                self.state = State::Str { escape: false };
                true
            }
        }
    }
}

/// Bytes searched eight at a time (SWAR, in a `u64`) before handing a search to `memchr`: JSON
/// strings and the gaps between them are mostly short, and `memchr`'s set-up costs more than a
/// short scan.
const SHORT: usize = 32;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` equal to `b`, except that bytes after (more significant
/// than) a match may be flagged falsely: only the lowest flag is exact, and it is the only one
/// used (the first match).
fn flags(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The first byte of `hay` for which `flagged` (over eight bytes, little-endian) says yes.
fn find_by(hay: &[u8], flagged: impl Fn(u64) -> u64, one: impl Fn(u8) -> bool) -> Option<usize> {
    let head = &hay[..hay.len().min(SHORT)];
    let mut words = head.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let m = flagged(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if let Some(n) = words.remainder().iter().position(|&b| one(b)) {
        return Some(at + n);
    }
    None
}

fn find(a: u8, hay: &[u8]) -> Option<usize> {
    match find_by(hay, |w| flags(w, a), |b| b == a) {
        Some(n) => Some(n),
        None if hay.len() > SHORT => memchr::memchr(a, &hay[SHORT..]).map(|n| n + SHORT),
        None => None,
    }
}

fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    // The lowest flag of the union is the first match of either byte.
    match find_by(hay, |w| flags(w, a) | flags(w, b), |x| x == a || x == b) {
        Some(n) => Some(n),
        None if hay.len() > SHORT => memchr::memchr2(a, b, &hay[SHORT..]).map(|n| n + SHORT),
        None => None,
    }
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
#[path = "json_find_tests.rs"]
mod find_tests;

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
}
