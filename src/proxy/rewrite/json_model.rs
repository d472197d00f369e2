//! A model of the JSON rewriter's rules (see `json.rs`'s `//!`) written as plainly as possible:
//! the whole body at once, one byte at a time, no searches, no blocks, no chunks, and its own
//! reading of `from` (no shared code with `origin.rs`). The streaming rewriter must produce
//! exactly its output for any bytes, in any chunking.

use super::json::ANNOTATIONS;

/// How an annotation value's match against the origin ended.
enum Outcome {
    /// The origin then `/` (raw, or `\/` when `escaped`); the `/` is at the index.
    Matched { at: usize, escaped: bool },
    /// The origin then the closing quote at the index.
    Whole { at: usize },
    /// The closing quote at the index came before the origin was complete.
    Closed { at: usize },
    /// The byte at the index decided there is no match; `escape`: the next byte is escaped.
    Mismatch { at: usize, escape: bool },
    /// The body ended first.
    Unfinished,
}

struct Model<'a> {
    pattern: &'a [u8],
    /// Scheme and authority: compared in any ASCII case.
    ci_len: usize,
}

impl Model<'_> {
    fn accepts(&self, k: usize, b: u8) -> bool {
        match self.pattern.get(k) {
            Some(p) if k < self.ci_len => p.eq_ignore_ascii_case(&b),
            Some(&p) => p == b,
            None => false,
        }
    }

    /// Matches the value whose first byte is `input[v]`.
    fn value(&self, input: &[u8], v: usize) -> Outcome {
        let n = self.pattern.len();
        let (mut k, mut j) = (0, v);
        loop {
            let Some(&b) = input.get(j) else {
                return Outcome::Unfinished;
            };
            let (c, escaped, at) = match b {
                b'"' if k == n => return Outcome::Whole { at: j },
                b'"' => return Outcome::Closed { at: j },
                b'\\' => {
                    let expected = self.pattern.get(k).copied().unwrap_or(b'/');
                    if expected != b'/' {
                        return Outcome::Mismatch {
                            at: j,
                            escape: true,
                        };
                    }
                    match input.get(j + 1) {
                        None => return Outcome::Unfinished,
                        Some(b'/') => (b'/', true, j + 1),
                        Some(_) => {
                            return Outcome::Mismatch {
                                at: j + 1,
                                escape: false,
                            };
                        }
                    }
                }
                _ => (b, false, j),
            };
            if k == n {
                return if c == b'/' {
                    Outcome::Matched { at, escaped }
                } else {
                    Outcome::Mismatch { at, escape: false }
                };
            }
            if !self.accepts(k, c) {
                return Outcome::Mismatch { at, escape: false };
            }
            k += 1;
            j = at + 1;
        }
    }
}

/// The rewritten body.
pub(super) fn rewrite(input: &[u8], from: &str, to: &str) -> Vec<u8> {
    let pattern = from.trim_end_matches('/').as_bytes();
    let authority = (0..pattern.len())
        .find(|&i| pattern[i..].starts_with(b"://"))
        .map_or(0, |i| i + 3);
    let ci_len = (authority..pattern.len())
        .find(|&i| pattern[i] == b'/')
        .unwrap_or(pattern.len());
    let model = Model { pattern, ci_len };
    let mut to_json = Vec::new();
    for b in to.trim_end_matches('/').bytes() {
        match b {
            b'"' | b'\\' => to_json.extend_from_slice(&[b'\\', b]),
            0..=0x1f => to_json.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => to_json.push(b),
        }
    }
    // `after`: 0 nothing, 1 an annotation key, 2 a key and its `:`.
    let (mut out, mut i, mut after) = (Vec::new(), 0, 0);
    // In a string: where its raw bytes start, and whether the next byte is escaped.
    let mut string: Option<(usize, bool)> = None;
    while let Some(&b) = input.get(i) {
        if let Some((start, escape)) = string {
            out.push(b);
            string = match b {
                _ if escape => Some((start, false)),
                b'\\' => Some((start, true)),
                b'"' => {
                    let raw = &input[start..i];
                    after = usize::from(ANNOTATIONS.iter().any(|a| raw.ends_with(a.as_bytes())));
                    None
                }
                _ => Some((start, false)),
            };
            i += 1;
            continue;
        }
        if b == b'"' && after == 2 && !pattern.is_empty() {
            out.push(b);
            after = 0;
            let (end, write, next) = match model.value(input, i + 1) {
                Outcome::Matched { at, escaped } => {
                    out.extend_from_slice(&to_json);
                    out.extend_from_slice(if escaped { b"\\/" } else { b"/" });
                    (at, false, Some((at + 1, false)))
                }
                Outcome::Whole { at } => {
                    out.extend_from_slice(&to_json);
                    out.push(b'"');
                    (at, false, None)
                }
                Outcome::Closed { at } => (at, true, None),
                Outcome::Mismatch { at, escape } => (at, true, Some((at + 1, escape))),
                Outcome::Unfinished => (input.len() - 1, true, None),
            };
            if write {
                out.extend_from_slice(&input[i + 1..=end]);
            }
            string = next;
            i = end + 1;
            continue;
        }
        out.push(b);
        match (after, b) {
            (_, b' ' | b'\t' | b'\n' | b'\r') => {}
            (1, b':') => after = 2,
            (_, b'"') => {
                after = 0;
                string = Some((i + 1, false));
            }
            _ => after = 0,
        }
        i += 1;
    }
    out
}
