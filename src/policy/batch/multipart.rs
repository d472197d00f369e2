//! Multipart framing as OData `$batch` uses it (RFC 2046): the boundary parameter, the split of a
//! body into part contents, and header blocks.
//!
//! Pure. Invariants: a delimiter is `--boundary` at the start of a line, optionally followed by
//! `--` (close) and spaces or tabs, then CRLF, LF or the end of the body; the line break before a
//! delimiter belongs to it, not to the part. Any other occurrence of `--boundary` (in a part, in
//! the preamble, after the close delimiter) is an error, and so is a body without a close
//! delimiter, so no two readers can frame the same bytes differently.

use super::BatchError;
use crate::policy::odata::split_byte;

/// The boundary parameter of a `multipart/mixed` Content-Type, unquoted and validated.
pub fn boundary_of(content_type: &str) -> Result<String, BatchError> {
    let mut params = split_byte(content_type, b';');
    let media = params.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return Err(BatchError::NotMultipart);
    }
    let mut boundary = None;
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        if boundary.is_some() {
            return Err(BatchError::InvalidBoundary);
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted
                .strip_suffix('"')
                .ok_or(BatchError::InvalidBoundary)?,
            None => value,
        };
        boundary = Some(value);
    }
    let boundary = boundary.ok_or(BatchError::MissingBoundary)?;
    let valid = (1..=70).contains(&boundary.len())
        && !boundary.ends_with(' ')
        && boundary.bytes().all(is_bchar);
    if !valid {
        return Err(BatchError::InvalidBoundary);
    }
    Ok(boundary.to_string())
}

#[cfg(test)]
#[test]
fn the_tchar_table_is_rfc_9110s_list() {
    for b in 0..=255u8 {
        let listed = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_tchar(b), listed, "{b}");
    }
}

/// RFC 2046 `bchars`.
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

/// The contents of the parts of `body`, between its delimiter lines.
pub fn split<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, BatchError> {
    let dash = format!("--{boundary}");
    let dash = dash.as_bytes();
    let finder = memchr::memmem::Finder::new(dash);
    let stray = || BatchError::StrayBoundary {
        boundary: boundary.to_string(),
    };
    let mut parts = Vec::new();
    let mut start = None;
    let mut from = 0;
    while let Some(at) = find(body, &finder, from) {
        let (close, line_end) = delimiter(body, at, dash.len()).ok_or_else(stray)?;
        if let Some(start) = start {
            parts.push(&body[start..content_end(body, start, at)]);
        }
        if close {
            return match find(body, &finder, line_end) {
                Some(_) => Err(stray()),
                None => Ok(parts),
            };
        }
        start = Some(line_end);
        from = line_end;
    }
    let boundary = boundary.to_string();
    Err(match start {
        None => BatchError::NoDelimiter { boundary },
        Some(_) => BatchError::Unterminated { boundary },
    })
}

fn find(haystack: &[u8], needle: &memchr::memmem::Finder<'_>, from: usize) -> Option<usize> {
    needle.find(haystack.get(from..)?).map(|i| i + from)
}

/// When `--boundary` at `at` forms a delimiter line: whether it closes, and where the line ends.
fn delimiter(body: &[u8], at: usize, len: usize) -> Option<(bool, usize)> {
    let line_start = at == 0 || body.get(at - 1) == Some(&b'\n');
    if !line_start {
        return None;
    }
    let mut i = at + len;
    let close = body.get(i..i + 2) == Some(b"--");
    if close {
        i += 2;
    }
    while matches!(body.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match body.get(i..) {
        Some([]) => Some((close, i)),
        Some([b'\n', ..]) => Some((close, i + 1)),
        Some([b'\r', b'\n', ..]) => Some((close, i + 2)),
        _ => None,
    }
}

/// The end of a part that starts at `start`, given the next delimiter at `at` (which follows a
/// line break unless the part is empty).
fn content_end(body: &[u8], start: usize, at: usize) -> usize {
    if at <= start {
        return start;
    }
    let end = at - 1;
    if end > start && body.get(end - 1) == Some(&b'\r') {
        end - 1
    } else {
        end
    }
}

/// A header block: its lines up to the first empty line, and what follows that line (`None`
/// when the block runs to the end without one). Lines end with LF or CRLF.
pub fn header_block(raw: &[u8]) -> (Vec<&[u8]>, Option<&[u8]>) {
    let mut lines = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return (lines, Some(next));
        }
        lines.push(line);
        rest = next;
    }
    (lines, None)
}

/// A header line as `(name, value)`, borrowed from the body.
pub type Field<'a> = (&'a str, &'a str);

/// Parses header lines as `Name: value`, tolerating whitespace around the colon.
pub fn headers<'a>(lines: &[&'a [u8]], request: usize) -> Result<Vec<Field<'a>>, BatchError> {
    lines
        .iter()
        .map(|line| header(line).ok_or(BatchError::MalformedHeader { request }))
        .collect()
}

fn header(line: &[u8]) -> Option<Field<'_>> {
    let line = std::str::from_utf8(line).ok()?;
    if line.starts_with([' ', '\t']) || crate::policy::odata::has_control(line, b"\t") {
        return None;
    }
    let colon = crate::policy::odata::find_byte(b':', line.as_bytes())?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let name = name.trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return None;
    }
    // `trim_matches([' ', '\t'])` on the bytes: the cuts fall next to ASCII bytes, so on
    // character boundaries.
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = value.as_bytes();
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    Some((name, value.get(start..end)?))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`] as a table: header names are checked byte by byte for every part.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// The value of the only header named `name` (case-insensitive), if any.
pub fn single<'a>(
    headers: &[Field<'a>],
    name: &str,
    request: usize,
) -> Result<Option<&'a str>, BatchError> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (_, Some((n, _))) => Err(BatchError::DuplicateHeader {
            request,
            name: n.to_string(),
        }),
        (first, None) => Ok(first.map(|(_, v)| *v)),
    }
}
