//! Streaming rewriter for JSON bodies: a lexer (strings, escapes, `:`), not a parser.
//!
//! Only the string VALUE of a key that ends with one of [`ANNOTATIONS`] is rewritten, and only
//! its origin prefix. The state is the last [`TAIL`] raw bytes of the current string (enough to
//! recognise an annotation key) and the bytes of a possible prefix (at most
//! [`JsonRewriter::max_held_back`]); nothing grows with the body. It never panics, and bytes
//! that are not part of a match pass through unchanged, JSON or not.
//!
//! The lexer's rules, which define the output on any bytes, valid JSON or not:
//! - Between strings, a `"` opens a string; nothing else matters, except right after an
//!   annotation key, where whitespace is skipped, a `:` is remembered, and a `"` after the `:`
//!   opens the annotation's value.
//! - In a string, `\` escapes the next byte and an unescaped `"` closes it. A string whose raw
//!   bytes (escapes not decoded) end with an annotation is an annotation key.
//! - An annotation value is matched against `from` byte by byte ([`Cursor`]); when the match
//!   ends (rewritten or not) the rest of the value is an ordinary string, whose raw bytes for the
//!   key rule above start after the byte that decided the match.
//!
//! Cost: between strings and in strings that are not annotation values, the lexer reads 64 bytes
//! at a time as bit masks ([`super::blocks`]: quotes, backslashes, escapes, string regions) and
//! only looks at the closing quotes whose previous byte could end an annotation; a block with a
//! backslash between strings (never valid JSON) is lexed byte by byte instead. A value whose
//! whole origin prefix is in the chunk, without escapes, is matched in one comparison; only the
//! other annotation values are looked at one byte at a time.

use std::sync::Arc;

use super::blocks::BLOCK;
use super::origin::{Cursor, Origin, Step};

#[path = "json_search.rs"]
mod search;
#[path = "json_skim.rs"]
mod skim;

use search::{find, find2};

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
    /// `from` has neither `"` nor `\`, so a value starting with its exact bytes matches (or not)
    /// as it would byte by byte.
    plain: bool,
}

impl JsonTarget {
    /// See [`JsonRewriter::new`].
    pub fn new(from: &str, to: &str) -> Arc<JsonTarget> {
        let origin = Origin::new(from);
        Arc::new(JsonTarget {
            plain: !origin.is_empty() && !origin.bytes().iter().any(|b| matches!(b, b'"' | b'\\')),
            origin,
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

/// Where one [`JsonRewriter::push`] is in its chunk, besides the lexing position.
struct Run {
    /// `chunk[..copied]` has been written out.
    copied: usize,
    /// Where the current string's raw bytes start in the chunk (0: it began in an earlier chunk,
    /// whose last bytes are in `tail`). Meaningful only in a string.
    start: usize,
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
        let mut run = Run {
            copied: 0,
            start: 0,
        };
        let mut i = 0;
        while i < chunk.len() {
            i = match self.state {
                State::Between(After::Other) | State::Str { .. } => {
                    match self.skim(chunk, i, &mut run.start) {
                        skim::Skim::To(next) => next,
                        skim::Skim::Bytewise { from, to: end } => {
                            let mut j = from;
                            while j < end {
                                j = self.step(chunk, j, end, &mut run, out);
                            }
                            j
                        }
                    }
                }
                _ => self.step(chunk, i, chunk.len(), &mut run, out),
            };
        }
        if matches!(self.state, State::Str { .. }) {
            self.keep_tail(run.start, chunk);
        }
        out.extend_from_slice(&chunk[run.copied..]);
    }

    /// [`Self::push`] of the body's last chunk, then [`Self::finish`]: the same bytes out.
    ///
    /// Why it can stop lexing early: the rewriter only ever writes `to` where an annotation's
    /// value starts right after its opening `"`, and a value can only match from a byte that
    /// could start the origin. So once no `"` followed by such a byte is left in the chunk, and
    /// no match is under way, nothing after that point can change: no state is needed past the
    /// body's end, and the rest goes out as it came. A body whose only URL is its
    /// `@odata.context` is lexed for a few dozen bytes, then copied.
    pub fn push_last(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let lexed = match (self.state, self.target.origin.starts()) {
            (State::Url, _) | (_, None) => chunk.len(),
            (_, Some(starts)) => match search::rfind_pair(chunk, b'"', starts) {
                None => 0,
                // Past the value's quote, room for a whole partial match and the byte that
                // decides it; if a match is still under way there, the rest is lexed below.
                Some(quote) => quote + 2 + self.max_held_back(),
            },
        };
        // Less than a block left (a nextLink at the end): lexed in the same pass, not split.
        let lexed = if chunk.len().saturating_sub(lexed) < BLOCK {
            chunk.len()
        } else {
            lexed
        };
        let (head, rest) = chunk.split_at(lexed);
        self.push(head, out);
        if self.state == State::Url {
            self.push(rest, out);
        } else {
            out.extend_from_slice(rest);
        }
        self.finish(out);
    }

    /// Lexes from `chunk[i]`, looking no further than `chunk[..end]` for a quote or backslash,
    /// and returns where to go on (past `end` only after a `\` at `end - 1`).
    fn step(
        &mut self,
        chunk: &[u8],
        i: usize,
        end: usize,
        run: &mut Run,
        out: &mut Vec<u8>,
    ) -> usize {
        match self.state {
            State::Url => {
                out.extend_from_slice(&chunk[run.copied..i]);
                if self.url_byte(chunk[i], out) {
                    run.start = i + 1;
                }
                run.copied = i + 1;
                i + 1
            }
            State::Str { escape: true } => {
                self.state = State::Str { escape: false };
                i + 1
            }
            State::Str { escape: false } => match find2(b'"', b'\\', &chunk[i..end]) {
                None => end,
                Some(n) if chunk[i + n] == b'\\' => {
                    if i + n + 2 > chunk.len() {
                        self.state = State::Str { escape: true };
                    }
                    i + n + 2
                }
                Some(n) => {
                    let key = self.is_annotation_key(run.start, &chunk[..i + n]);
                    self.state = State::Between(if key { After::Key } else { After::Other });
                    i + n + 1
                }
            },
            State::Between(After::Other) => match find(b'"', &chunk[i..end]) {
                None => end,
                Some(n) => {
                    run.start = i + n + 1;
                    self.state = State::Str { escape: false };
                    i + n + 1
                }
            },
            State::Between(after) => {
                let b = chunk[i];
                self.state = match (after, b) {
                    (_, b' ' | b'\t' | b'\n' | b'\r') => State::Between(after),
                    (After::Key, b':') => State::Between(After::Colon),
                    (After::Colon, b'"') if !self.target.origin.is_empty() => {
                        return self.open_value(chunk, i + 1, run, out);
                    }
                    (_, b'"') => {
                        run.start = i + 1;
                        State::Str { escape: false }
                    }
                    _ => State::Between(After::Other),
                };
                i + 1
            }
        }
    }

    /// An annotation's value opens at `chunk[at]`. When the origin and the byte after it are in
    /// the chunk as plain bytes, the match is decided here in one comparison: a `/` or the
    /// closing `"` after the origin is a match, anything else is left to the byte-by-byte
    /// [`Self::url_byte`], which gives the same answer one byte at a time.
    fn open_value(&mut self, chunk: &[u8], at: usize, run: &mut Run, out: &mut Vec<u8>) -> usize {
        let target = &*self.target;
        let n = target.origin.bytes().len();
        let next = chunk.get(at + n).copied();
        if target.plain && matches!(next, Some(b'/' | b'"')) && target.origin.is(&chunk[at..at + n])
        {
            out.extend_from_slice(&chunk[run.copied..at]);
            out.extend_from_slice(&target.to);
            // The `/` or `"` goes out with the bytes that follow it.
            run.copied = at + n;
            self.state = if next == Some(b'/') {
                run.start = at + n + 1;
                State::Str { escape: false }
            } else {
                State::Between(After::Other)
            };
            return at + n + 1;
        }
        self.cursor = Cursor::default();
        if self.held.capacity() == 0 {
            // Once per body, at its bound: never grown byte by byte.
            self.held.reserve(target.origin.max_raw_len());
        }
        self.state = State::Url;
        at
    }

    /// Keeps the last [`TAIL`] raw bytes of the current string, which starts at `chunk[start]`
    /// (0: it began in an earlier chunk, whose last bytes are in the tail already).
    fn keep_tail(&mut self, start: usize, chunk: &[u8]) {
        if start > 0 {
            self.tail_len = 0;
        }
        let bytes = &chunk[start.min(chunk.len())..];
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

    /// Whether the string whose raw bytes start at `chunk[start]` (0: in an earlier chunk, whose
    /// last bytes are in the tail) and end at the end of `chunk` is an annotation key.
    #[inline]
    fn is_annotation_key(&self, start: usize, chunk: &[u8]) -> bool {
        let last = &chunk[start.min(chunk.len())..];
        if start > 0 || last.len() >= TAIL || self.tail_len == 0 {
            return is_annotation(last);
        }
        self.is_annotation_key_joined(last)
    }

    /// [`Self::is_annotation_key`] for a string that began in an earlier chunk and has fewer
    /// than [`TAIL`] bytes in this one: its last bytes joined from the tail and `last`.
    #[inline(never)]
    fn is_annotation_key_joined(&self, last: &[u8]) -> bool {
        let tail = &self.tail[..self.tail_len];
        // Every annotation ends in `k`, `t` or `d`: most strings are out after one comparison.
        let final_byte = last.last().or_else(|| tail.last()).copied();
        if !matches!(final_byte, Some(b'k' | b't' | b'd')) {
            return false;
        }
        let mut joined = [0u8; TAIL];
        let keep = (TAIL - last.len()).min(tail.len());
        joined[..keep].copy_from_slice(&tail[tail.len() - keep..]);
        joined[keep..keep + last.len()].copy_from_slice(last);
        is_annotation(&joined[..keep + last.len()])
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

/// Whether `raw` (a string's raw bytes, or at least their last [`TAIL`]) ends with an
/// annotation. The last byte picks the candidates: `d` is only `@odata.id` and `t` only
/// `@odata.context`, so most strings (and keys such as `contactid`) are out after one
/// comparison; `k` is one of the six links.
#[inline]
fn is_annotation(raw: &[u8]) -> bool {
    match raw.last() {
        Some(b'd') => raw.ends_with(b"@odata.id"),
        Some(b't') => raw.ends_with(b"@odata.context"),
        Some(b'k') if raw.ends_with(b"Link") => {
            ANNOTATIONS.iter().any(|a| raw.ends_with(a.as_bytes()))
        }
        _ => false,
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
#[path = "json_tests.rs"]
mod tests;
