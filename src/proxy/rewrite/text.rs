//! Streaming rewriter for `multipart/mixed` (`$batch`) bodies, whose parts carry `Location` and
//! `OData-EntityId` headers and JSON: EVERY occurrence of `from` followed by `/` (or `\/`), `"`,
//! whitespace or the end of the body becomes `to`. Other bytes pass through unchanged.
//!
//! The only state is a possible match in progress, at most [`TextRewriter::max_held_back`] bytes.

use super::origin::{Cursor, Origin, Step};

/// Rewrites every occurrence of the org's base URL in a text body fed in chunks of any size.
#[derive(Debug, Clone)]
pub struct TextRewriter {
    origin: Origin,
    /// `to` without its trailing `/`, inserted verbatim.
    to: Box<[u8]>,
    cursor: Cursor,
    held: Vec<u8>,
}

impl TextRewriter {
    /// `from`: the org's base URL; `to`: the gateway's base for the tenant. An empty `from`
    /// rewrites nothing.
    pub fn new(from: &str, to: &str) -> Self {
        let origin = Origin::new(from);
        let held = Vec::with_capacity(origin.max_raw_len() + 1);
        Self {
            origin,
            to: to.trim_end_matches('/').as_bytes().into(),
            cursor: Cursor::default(),
            held,
        }
    }

    /// Appends the rewritten form of `chunk` to `out`, except bytes that might still be the start
    /// of a match (see [`Self::held_back`]).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.held.is_empty() {
                let n = rest
                    .iter()
                    .position(|&b| self.origin.could_start(b))
                    .unwrap_or(rest.len());
                out.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            if let Some((&b, tail)) = rest.split_first() {
                self.byte(b, out);
                rest = tail;
            }
        }
    }

    /// Ends the body: a complete `from` at the very end is rewritten, anything else held is
    /// released unchanged.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.held.is_empty() && self.cursor.is_complete(&self.origin) {
            self.held.clear();
            out.extend_from_slice(&self.to);
        }
        out.append(&mut self.held);
        self.cursor = Cursor::default();
    }

    /// Bytes currently held back; never more than [`Self::max_held_back`] between calls.
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    /// The bound on [`Self::held_back`]; the same as [`super::JsonRewriter::max_held_back`].
    pub fn max_held_back(&self) -> usize {
        self.origin.max_raw_len()
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        let ends_value = matches!(b, b'"' | b' ' | b'\t' | b'\r' | b'\n');
        if ends_value && !self.held.is_empty() && self.cursor.is_complete(&self.origin) {
            self.emit_match(&[b], out);
            return;
        }
        match self.cursor.step(&self.origin, b) {
            Step::Hold => self.held.push(b),
            Step::Matched { escaped } => self.emit_match(if escaped { b"\\/" } else { b"/" }, out),
            Step::Mismatch => {
                self.held.push(b);
                self.resync(out);
            }
        }
    }

    fn emit_match(&mut self, terminator: &[u8], out: &mut Vec<u8>) {
        self.held.clear();
        self.cursor = Cursor::default();
        out.extend_from_slice(&self.to);
        out.extend_from_slice(terminator);
    }

    /// After a mismatch, `held` ends with the byte that broke the match. A later match can start
    /// inside it: keep the longest suffix that is still a possible match, release the rest.
    fn resync(&mut self, out: &mut Vec<u8>) {
        for start in 1..self.held.len() {
            if let Some(cursor) = self.partial_match(&self.held[start..]) {
                out.extend_from_slice(&self.held[..start]);
                self.held.drain(..start);
                self.cursor = cursor;
                return;
            }
        }
        out.append(&mut self.held);
        self.cursor = Cursor::default();
    }

    /// The cursor after `bytes`, when every one of them is held as a possible match. (A suffix
    /// of a broken partial match is too short to complete one, so `Matched` cannot occur here.)
    fn partial_match(&self, bytes: &[u8]) -> Option<Cursor> {
        let mut cursor = Cursor::default();
        let all_held = bytes
            .iter()
            .all(|&b| cursor.step(&self.origin, b) == Step::Hold);
        all_held.then_some(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "https://org.crm.dynamics.com";
    const TO: &str = "http://gw.local:8080/contoso";

    fn rewrite_with(from: &str, input: &str) -> String {
        let mut rewriter = TextRewriter::new(from, TO);
        let mut out = Vec::new();
        rewriter.push(input.as_bytes(), &mut out);
        rewriter.finish(&mut out);
        String::from_utf8(out).expect("utf-8 in, utf-8 out")
    }

    fn rewrite(input: &str) -> String {
        rewrite_with(FROM, input)
    }

    #[test]
    fn every_occurrence_is_rewritten_with_each_terminator() {
        let input =
            format!("Location: {FROM}/a\r\nOData-EntityId: {FROM}\r\n\"{FROM}\" {FROM}\t{FROM}");
        let want = format!("Location: {TO}/a\r\nOData-EntityId: {TO}\r\n\"{TO}\" {TO}\t{TO}");
        assert_eq!(rewrite(&input), want);
    }

    #[test]
    fn escaped_slashes_and_case_are_accepted() {
        let input = r#"{"@odata.id":"HTTPS:\/\/Org.crm.dynamics.com\/api"}"#;
        assert_eq!(rewrite(input), format!(r#"{{"@odata.id":"{TO}\/api"}}"#));
    }

    #[test]
    fn lookalikes_are_untouched() {
        for input in [
            "https://org.crm.dynamics.com.evil.net/a",
            "https://org.crm.dynamics.com:8443/a",
            "https://org.crm.dynamics.comx",
            "https://org.crm.dynamics.com?x",
            "https://org.crm.dynamics.co",
            "https:/org.crm.dynamics.com/",
            r"https:\\org.crm.dynamics.com/",
        ] {
            assert_eq!(rewrite(input), input);
        }
    }

    #[test]
    fn a_match_can_start_inside_a_broken_one() {
        let input = format!("hhttphttps:https://{FROM}/ https:\\{FROM}/");
        let want = format!("hhttphttps:https://{TO}/ https:\\{TO}/");
        assert_eq!(rewrite(&input), want);
        let input = "aaab/ aab/ aaaab/";
        assert_eq!(rewrite_with("aab", input), format!("a{TO}/ {TO}/ aa{TO}/"));
    }

    #[test]
    fn the_hold_back_bound_is_respected_on_adversarial_input() {
        let mut rewriter = TextRewriter::new("aab", TO);
        let mut out = Vec::new();
        for &b in b"aaaaaaaaaaa\\a\\\\aab\\aab\\/" {
            rewriter.push(&[b], &mut out);
            assert!(rewriter.held_back() <= rewriter.max_held_back());
        }
        rewriter.finish(&mut out);
        assert_eq!(out, format!("aaaaaaaaaaa\\a\\\\aab\\{TO}\\/").as_bytes());
    }
}
