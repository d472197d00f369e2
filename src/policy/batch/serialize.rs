//! The canonical wire form of a [`Batch`]: CRLF line endings, the same boundaries, no preamble
//! or epilogue, `Name: value` headers, and a change set announced by
//! `Content-Type: multipart/mixed; boundary=...` alone.
//!
//! Pure. Invariants: `parse(serialize(b))` equals `b` for every `b` that `parse` returned;
//! `Content-Length` is written for every non-empty body and never otherwise (one left in
//! [`Part::headers`] is ignored); CR and LF inside a header name or value, a method, a target or
//! a version become spaces, so a value edited after parsing cannot add header lines or requests.
//! Bodies are written as they are: one that contains a delimiter line of its own boundary would
//! change the framing (parsed bodies never do).

use super::{Batch, Item, Part};

/// Writes `batch` in canonical form.
pub fn serialize(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint(batch));
    for item in &batch.items {
        match item {
            Item::Request(part) => {
                open_item(&mut out, &batch.boundary, None);
                write_part(&mut out, part);
            }
            Item::ChangeSet { boundary, parts } => {
                open_item(&mut out, &batch.boundary, Some(boundary));
                for part in parts {
                    open_change_set_part(&mut out, boundary);
                    write_part(&mut out, part);
                    close_change_set_part(&mut out);
                }
                close_change_set(&mut out, boundary);
            }
        }
        close_item(&mut out);
    }
    close_batch(&mut out, &batch.boundary);
    out
}

// The pieces of the canonical form, in the order `serialize` writes them; the inspector writes
// a batch it rewrites part by part with the same pieces.

/// The delimiter opening a top-level item; for a change set (`change_set` is its boundary),
/// also its Content-Type and the blank line after it.
pub(crate) fn open_item(out: &mut Vec<u8>, boundary: &str, change_set: Option<&str>) {
    delimiter(out, boundary, false);
    if let Some(inner) = change_set {
        let content_type = format!("multipart/mixed; boundary={}", quote(inner));
        line(out, &["Content-Type: ", &content_type]);
        out.extend_from_slice(b"\r\n");
    }
}

/// The line break that ends a top-level item.
pub(crate) fn close_item(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// The delimiter opening a part of a change set.
pub(crate) fn open_change_set_part(out: &mut Vec<u8>, boundary: &str) {
    delimiter(out, boundary, false);
}

/// The line break that ends a part of a change set.
pub(crate) fn close_change_set_part(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// The close delimiter of a change set.
pub(crate) fn close_change_set(out: &mut Vec<u8>, boundary: &str) {
    delimiter(out, boundary, true);
}

/// The close delimiter of the batch.
pub(crate) fn close_batch(out: &mut Vec<u8>, boundary: &str) {
    delimiter(out, boundary, true);
    out.extend_from_slice(b"\r\n");
}

/// About the size [`serialize`] writes (a little more), so that its buffer is allocated once.
fn size_hint(batch: &Batch) -> usize {
    let fields = |pairs: &[(String, String)]| -> usize {
        pairs.iter().map(|(n, v)| n.len() + v.len() + 4).sum()
    };
    let part = |p: &Part| {
        let heads = fields(&p.mime_headers) + fields(&p.headers);
        heads + p.method.len() + p.target.len() + p.version.len() + p.body.len() + 48
    };
    let boundaries = batch.boundary.len() + 8;
    batch
        .items
        .iter()
        .map(|item| match item {
            Item::Request(p) => part(p) + boundaries,
            Item::ChangeSet { boundary, parts } => {
                let inner: usize = parts.iter().map(|p| part(p) + boundary.len() + 8).sum();
                inner + 3 * boundary.len() + boundaries + 64
            }
        })
        .sum::<usize>()
        + boundaries
}

/// The boundary as a Content-Type parameter value, quoted when it holds a `tspecial` or space.
pub fn quote(boundary: &str) -> String {
    let bare = boundary
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"'+_-.".contains(&b));
    if bare {
        boundary.to_string()
    } else {
        format!("\"{boundary}\"")
    }
}

/// `--boundary` (or `--boundary--`), followed by CRLF unless it closes.
fn delimiter(out: &mut Vec<u8>, boundary: &str, close: bool) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    if close {
        out.extend_from_slice(b"--");
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// The content of one part, without the line break that precedes the next delimiter.
fn write_part(out: &mut Vec<u8>, part: &Part) {
    for (name, value) in &part.mime_headers {
        mime_header(out, name, value);
    }
    end_mime_headers(out);
    line(out, &[&part.method, " ", &part.target, " ", &part.version]);
    for (name, value) in &part.headers {
        request_header(out, name, value);
    }
    end_part(out, &part.body);
}

/// One MIME header of a part.
pub(crate) fn mime_header(out: &mut Vec<u8>, name: &str, value: &str) {
    field(out, name, value);
}

/// The blank line after a part's MIME headers.
pub(crate) fn end_mime_headers(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// One inner request header (a `Content-Length` is framing and skipped: [`end_part`] writes it).
pub(crate) fn request_header(out: &mut Vec<u8>, name: &str, value: &str) {
    if !name.eq_ignore_ascii_case("Content-Length") {
        field(out, name, value);
    }
}

/// `name: value` as one line (what [`line`] writes for those three pieces).
fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    let start = out.len();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    end_line(out, start);
}

/// `Content-Length` for a non-empty body, the blank line, and the body.
pub(crate) fn end_part(out: &mut Vec<u8>, body: &[u8]) {
    if !body.is_empty() {
        let mut length = itoa::Buffer::new();
        line(out, &["Content-Length: ", length.format(body.len())]);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// One CRLF-terminated line; CR and LF inside the pieces become spaces.
pub(crate) fn line(out: &mut Vec<u8>, pieces: &[&str]) {
    let start = out.len();
    for piece in pieces {
        out.extend_from_slice(piece.as_bytes());
    }
    end_line(out, start);
}

/// Ends the line whose text was written to `out` from `start` on: its CR and LF become spaces
/// (the pieces copied whole, then one search over the line rather than one per piece), then
/// the CRLF.
pub(crate) fn end_line(out: &mut Vec<u8>, start: usize) {
    let mut from = start;
    while let Some(i) = out
        .get(from..)
        .and_then(|rest| memchr::memchr2(b'\r', b'\n', rest))
    {
        out[from + i] = b' ';
        from += i + 1;
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[test]
fn a_line_turns_every_cr_and_lf_of_its_pieces_into_spaces() {
    let mut out = b"--b\r\n".to_vec();
    line(&mut out, &["Na\rme", ": ", "va\nl\r\nue", "", "\n"]);
    assert_eq!(out, b"--b\r\nNa me: va l  ue \r\n");
}
