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
        delimiter(&mut out, &batch.boundary, false);
        match item {
            Item::Request(part) => write_part(&mut out, part),
            Item::ChangeSet { boundary, parts } => {
                let content_type = format!("multipart/mixed; boundary={}", quote(boundary));
                line(&mut out, &["Content-Type: ", &content_type]);
                out.extend_from_slice(b"\r\n");
                for part in parts {
                    delimiter(&mut out, boundary, false);
                    write_part(&mut out, part);
                    out.extend_from_slice(b"\r\n");
                }
                delimiter(&mut out, boundary, true);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    delimiter(&mut out, &batch.boundary, true);
    out.extend_from_slice(b"\r\n");
    out
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
        line(out, &[name, ": ", value]);
    }
    out.extend_from_slice(b"\r\n");
    line(out, &[&part.method, " ", &part.target, " ", &part.version]);
    let framing = |name: &str| name.eq_ignore_ascii_case("Content-Length");
    for (name, value) in part.headers.iter().filter(|(name, _)| !framing(name)) {
        line(out, &[name, ": ", value]);
    }
    if !part.body.is_empty() {
        line(out, &["Content-Length: ", &part.body.len().to_string()]);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&part.body);
}

/// One CRLF-terminated line; CR and LF inside the pieces become spaces.
fn line(out: &mut Vec<u8>, pieces: &[&str]) {
    for piece in pieces {
        let bytes = piece.as_bytes();
        match crate::policy::odata::find_byte2(b'\r', b'\n', bytes) {
            None => out.extend_from_slice(bytes),
            Some(_) => out.extend(bytes.iter().map(|&b| match b {
                b'\r' | b'\n' => b' ',
                b => b,
            })),
        }
    }
    out.extend_from_slice(b"\r\n");
}
