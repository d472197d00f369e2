//! Multipart framing as OData `$batch` uses it (RFC 2046): the boundary parameter, the split of a
//! body into part contents, and header blocks.
//!
//! Pure. Invariants: a delimiter is `--boundary` at the start of a line, optionally followed by
//! `--` (close) and spaces or tabs, then CRLF, LF or the end of the body; the line break before a
//! delimiter belongs to it, not to the part. Any other occurrence of `--boundary` (in a part, in
//! the preamble, after the close delimiter) is an error, and so is a body without a close
//! delimiter, so no two readers can frame the same bytes differently.

use std::ops::Range;

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

/// Where the contents of the parts of `body` are, between its delimiter lines.
pub fn split(body: &[u8], boundary: &str) -> Result<Vec<Range<usize>>, BatchError> {
    let dash = format!("--{boundary}");
    let dash = dash.as_bytes();
    let finder = memchr::memmem::Finder::new(dash);
    let stray = || BatchError::StrayBoundary {
        boundary: boundary.to_string(),
    };
    // Every part follows a delimiter line of at least `dash.len() + 1` bytes: sized once for
    // the batches the gateway takes (at most 1000 parts), not beyond what the body can hold.
    let mut parts = Vec::with_capacity((body.len() / (dash.len() + 1)).min(1024));
    let mut start = None;
    let mut from = 0;
    while let Some(at) = find(body, &finder, from) {
        let (close, line_end) = delimiter(body, at, dash.len()).ok_or_else(stray)?;
        if let Some(start) = start {
            parts.push(start..content_end(body, start, at));
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

/// The longest prefix of `raw` that is UTF-8, as text. A header line is text exactly when it
/// lies in it (lines are cut at ASCII bytes), so one check serves every line of a part.
pub fn text_prefix(raw: &[u8]) -> &str {
    match std::str::from_utf8(raw) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// [`text_prefix`]`(&body[range])`, given `text`, [`text_prefix`]`(body)`: its share of it when
/// that is one (UTF-8 is read the same from any character boundary on), else read again.
pub fn text_of<'a>(body: &'a [u8], text: &'a str, range: Range<usize>) -> &'a str {
    match text.get(range.start..range.end.min(text.len())) {
        Some(share) => share,
        None => text_prefix(body.get(range).unwrap_or_default()),
    }
}

/// The lines of a header block, from a position in a part up to the first empty line. Lines
/// end with LF or CRLF (one CR before the LF is not part of the line).
pub struct Lines<'a> {
    raw: &'a [u8],
    /// [`text_prefix`]`(raw)`.
    text: &'a str,
    pos: usize,
    /// Where what follows the empty line starts, once it was read.
    rest: Option<usize>,
    done: bool,
}

impl<'a> Lines<'a> {
    /// The block of `raw` that starts at `pos`; `text` is [`text_prefix`]`(raw)`.
    pub fn new(raw: &'a [u8], text: &'a str, pos: usize) -> Self {
        Lines {
            raw,
            text,
            pos: pos.min(raw.len()),
            rest: None,
            done: false,
        }
    }

    /// The next line, `Some(None)` when it is not UTF-8; `None` once the empty line that ends
    /// the block, or the end of the part, is reached.
    pub fn next_line(&mut self) -> Option<Option<&'a str>> {
        if self.done || self.pos >= self.raw.len() {
            self.done = true;
            return None;
        }
        let start = self.pos;
        let (end, next) = match memchr::memchr(b'\n', &self.raw[start..]) {
            Some(i) => (start + i, start + i + 1),
            None => (self.raw.len(), self.raw.len()),
        };
        let end = match end > start && self.raw[end - 1] == b'\r' {
            true => end - 1,
            false => end,
        };
        self.pos = next;
        if end == start {
            self.done = true;
            self.rest = Some(next);
            return None;
        }
        Some(self.text.get(start..end))
    }

    /// Where what follows the block's empty line starts in `raw` (`None` when the block runs
    /// to the end without one). Meaningful once [`Lines::next_line`] returned `None`.
    pub fn rest(&self) -> Option<usize> {
        self.rest
    }
}

/// A header line as `(name, value)`, borrowed from the body.
pub type Field<'a> = (&'a str, &'a str);

/// Header fields in order, the first `N` held in place: a part has a handful, so reading one
/// allocates nothing. Reads as a slice.
#[derive(Clone)]
pub struct Fields<'a, const N: usize> {
    len: usize,
    /// The fields while there are at most `N`.
    inline: [Field<'a>; N],
    /// All the fields once there are more than `N`.
    spilled: Vec<Field<'a>>,
}

impl<'a, const N: usize> Fields<'a, N> {
    pub fn new() -> Self {
        Fields {
            len: 0,
            inline: [("", ""); N],
            spilled: Vec::new(),
        }
    }

    pub fn push(&mut self, field: Field<'a>) {
        if self.len < N {
            self.inline[self.len] = field;
        } else {
            if self.len == N {
                self.spilled.reserve(2 * N);
                self.spilled.extend_from_slice(&self.inline);
            }
            self.spilled.push(field);
        }
        self.len += 1;
    }

    /// Keeps the fields `keep` accepts, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Field<'a>) -> bool) {
        if self.len <= N {
            let mut kept = 0;
            for i in 0..self.len {
                if keep(&self.inline[i]) {
                    self.inline[kept] = self.inline[i];
                    kept += 1;
                }
            }
            self.len = kept;
        } else {
            self.spilled.retain(|f| keep(f));
            self.len = self.spilled.len();
            if self.len <= N {
                self.inline[..self.len].copy_from_slice(&self.spilled);
                self.spilled.clear();
            }
        }
    }

    pub fn as_slice(&self) -> &[Field<'a>] {
        match self.len <= N {
            true => &self.inline[..self.len],
            false => &self.spilled,
        }
    }
}

impl<const N: usize> Default for Fields<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> std::ops::Deref for Fields<'a, N> {
    type Target = [Field<'a>];
    fn deref(&self) -> &[Field<'a>] {
        self.as_slice()
    }
}

impl<'s, 'a, const N: usize> IntoIterator for &'s Fields<'a, N> {
    type Item = &'s Field<'a>;
    type IntoIter = std::slice::Iter<'s, Field<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<const N: usize> PartialEq for Fields<'_, N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Eq for Fields<'_, N> {}

impl<const N: usize> std::fmt::Debug for Fields<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// Parses a header line as `Name: value`, tolerating whitespace around the colon: the name is
/// one or more `tchar`s (so the line does not start with whitespace), then spaces or tabs, the
/// first colon, and a value without control characters but tab, trimmed of spaces and tabs.
pub fn header(line: &str) -> Option<Field<'_>> {
    let bytes = line.as_bytes();
    // The name runs to the first byte that is not a `tchar`: a colon, a blank or anything
    // that makes the line malformed (neither a colon nor a blank is a `tchar`).
    let name_end = bytes
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(bytes.len());
    if name_end == 0 {
        return None;
    }
    let mut colon = name_end;
    while matches!(bytes.get(colon), Some(b' ' | b'\t')) {
        colon += 1;
    }
    if bytes.get(colon) != Some(&b':') {
        return None;
    }
    // The name and the blanks hold no control character: the value is what is left to check.
    let value = &line[colon + 1..];
    if crate::policy::odata::has_control(value, b"\t") {
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
    Some((&line[..name_end], value.get(start..end)?))
}

/// The first value of a header and the name (as written) of its second occurrence, noted as
/// the fields are read: [`Seen::single`] answers as a search of all of them would.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen<'a> {
    value: Option<&'a str>,
    again: Option<&'a str>,
}

impl<'a> Seen<'a> {
    pub fn note(&mut self, name: &'a str, value: &'a str) {
        match self.value {
            None => self.value = Some(value),
            Some(_) => {
                self.again.get_or_insert(name);
            }
        }
    }

    /// The value of the only header noted, if any; a second one is refused with its name.
    pub fn single(&self, request: usize) -> Result<Option<&'a str>, BatchError> {
        match self.again {
            Some(name) => Err(BatchError::DuplicateHeader {
                request,
                name: name.to_string(),
            }),
            None => Ok(self.value),
        }
    }
}

/// Which of `names` (lowercase) `name` is, compared case-insensitively.
pub fn which(name: &str, names: &[&str]) -> Option<usize> {
    names
        .iter()
        .position(|n| n.len() == name.len() && n.eq_ignore_ascii_case(name))
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
