//! The resource path after `/api/data/{version}/`, split into typed segments.
//!
//! Canonical input only: names are written plainly (no percent-encoding); `%XX` is accepted
//! only inside key parentheses, and never for `/`, `\`, `%` itself (double encoding) or control
//! characters. Dot segments, empty segments, backslashes and absolute URLs are malformed.
//! This module does not know the schema: whether a name is a navigation property, a column or
//! an operation is decided by the classifier with the tenant's metadata.

use super::{ParseError, is_identifier, percent_decode, split_byte};

/// Prefix of qualified operation and type names.
pub const NAMESPACE: &str = "Microsoft.Dynamics.CRM.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath<'a> {
    pub head: Head<'a>,
    pub tail: Vec<Segment<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head<'a> {
    /// The service document (`/api/data/v9.2/`).
    ServiceRoot,
    Metadata,
    Batch,
    /// `name` or `name(...)`: an entity set, an unbound function/action, or `EntityDefinitions`.
    Name {
        name: &'a str,
        key: Option<KeySpec>,
    },
    /// `$1`: a Content-ID reference inside a `$batch` change set.
    ContentId(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A navigation property, a structural property or (for metadata) a sub-resource.
    Name {
        name: &'a str,
        key: Option<KeySpec>,
    },
    /// `Microsoft.Dynamics.CRM.X` or `Microsoft.Dynamics.CRM.X(...)`: a bound operation or a cast.
    Qualified {
        name: &'a str,
        params: Option<KeySpec>,
    },
    Count,
    Value,
    Ref,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// `()`
    Empty,
    Guid(String),
    /// `prop=literal,...` after decoding; literals keep their quotes.
    Pairs(Vec<(String, String)>),
}

pub fn parse_path(raw: &str) -> Result<ResourcePath<'_>, ParseError> {
    match plain_path(raw) {
        Some(path) => Ok(path),
        None => parse_checked(raw),
    }
}

/// The common path, `contacts` or `accounts/contact_customer_accounts`, in one pass over the
/// bytes: `Some` only when every segment is a plain identifier (ASCII letters, digits and `_`,
/// not starting with a digit) and there is at least one. Such a path has nothing
/// [`check_raw`] refuses (no backslash, control, space, `%`, `:`, empty or dot segment) and
/// nothing [`parse_checked`] reads differently (no `$`, `(`, `.`), so it parses to what
/// [`parse_checked`] returns for it; any other path is `None` and takes the full checks.
fn plain_path(raw: &str) -> Option<ResourcePath<'_>> {
    use super::{NAME_BYTE, NAME_DIGIT, NAME_START};
    // At the start of a segment (where a digit, a `/` or the end are refused).
    let mut at_start = true;
    let mut slashes = 0usize;
    for &b in raw.as_bytes() {
        match NAME_BYTE[usize::from(b)] {
            NAME_START => at_start = false,
            NAME_DIGIT if !at_start => {}
            0 if b == b'/' && !at_start => {
                at_start = true;
                slashes += 1;
            }
            _ => return None,
        }
    }
    if at_start {
        return None;
    }
    // A single segment (most requests) needs no split.
    let (name, tail) = match slashes {
        0 => (raw, Vec::new()),
        _ => {
            let mut segments = split_byte(raw, b'/');
            let name = segments.next()?;
            let mut tail = Vec::with_capacity(slashes);
            tail.extend(segments.map(|name| Segment::Name { name, key: None }));
            (name, tail)
        }
    };
    Some(ResourcePath {
        head: Head::Name { name, key: None },
        tail,
    })
}

/// [`parse_path`] for any path: the raw checks, then each segment.
fn parse_checked(raw: &str) -> Result<ResourcePath<'_>, ParseError> {
    check_raw(raw)?;
    if raw.is_empty() {
        return Ok(ResourcePath {
            head: Head::ServiceRoot,
            tail: vec![],
        });
    }
    let mut segments = split_byte(raw, b'/');
    let first = segments.next().unwrap_or_default();
    let head = match first {
        "$metadata" => Head::Metadata,
        "$batch" => Head::Batch,
        s if s.starts_with('$') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()) => {
            Head::ContentId(s)
        }
        s => {
            let (name, key) = named(s)?;
            if name.contains('.') {
                return Err(malformed(format!(
                    "`{s}`: unbound operations are called without a namespace"
                )));
            }
            Head::Name { name, key }
        }
    };
    let mut tail = Vec::new();
    for seg in segments {
        tail.push(segment(seg)?);
    }
    if matches!(head, Head::Metadata | Head::Batch) && !tail.is_empty() {
        return Err(malformed("nothing may follow $metadata or $batch".into()));
    }
    Ok(ResourcePath { head, tail })
}

fn malformed(msg: String) -> ParseError {
    ParseError::Malformed(msg)
}

/// Rejects non-canonical raw paths before any decoding. Runs for every request: the searches
/// for `%` sequences and absolute URLs only run when a `%` or a `:` is there at all, and compare
/// case-insensitively in place.
fn check_raw(raw: &str) -> Result<(), ParseError> {
    let bytes = raw.as_bytes();
    if bytes.contains(&b'\\') {
        return Err(malformed("backslashes are not allowed in the path".into()));
    }
    if bytes.iter().any(|b| b.is_ascii_control() || *b == b' ') {
        return Err(malformed(
            "control characters or spaces in the path must not be sent".into(),
        ));
    }
    if bytes.contains(&b'%') {
        for bad in ["%2f", "%5c", "%25", "%00"] {
            if contains_ignore_case(bytes, bad.as_bytes()) {
                return Err(malformed(format!(
                    "`{bad}` (encoded slash, backslash, percent or NUL) is not allowed in the path"
                )));
            }
        }
    }
    if split_byte(raw, b'/').any(|s| s.is_empty() || s == "." || s == "..") && !raw.is_empty() {
        return Err(malformed("the path has an empty or dot segment".into()));
    }
    if bytes.contains(&b':')
        && (contains_ignore_case(bytes, b"http:") || contains_ignore_case(bytes, b"https:"))
    {
        return Err(malformed(
            "absolute URLs are not allowed inside the path".into(),
        ));
    }
    Ok(())
}

/// Whether `haystack` contains `needle` (lowercase ASCII), ignoring ASCII case.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn segment(raw: &str) -> Result<Segment<'_>, ParseError> {
    Ok(match raw {
        "$count" => Segment::Count,
        "$value" => Segment::Value,
        "$ref" => Segment::Ref,
        s if s.starts_with('$') => return Err(malformed(format!("unknown path segment `{s}`"))),
        s => {
            let (name, key) = named(s)?;
            match name.strip_prefix(NAMESPACE) {
                Some(op) if is_identifier(op) => Segment::Qualified {
                    name: op,
                    params: key,
                },
                Some(_) => return Err(malformed(format!("`{s}` is not a valid qualified name"))),
                None if name.contains('.') => {
                    return Err(ParseError::NotUnderstood(format!(
                        "`{name}`: only the Microsoft.Dynamics.CRM namespace is known"
                    )));
                }
                None => Segment::Name { name, key },
            }
        }
    })
}

/// `name` or `name(...)`; the name may be qualified (dots) when it is an operation or a cast.
fn named(segment: &str) -> Result<(&str, Option<KeySpec>), ParseError> {
    let (name, key) = match super::find_byte(b'(', segment.as_bytes()) {
        Some(open) => {
            let Some(inner) = segment[open + 1..].strip_suffix(')') else {
                return Err(malformed(format!("unbalanced parentheses in `{segment}`")));
            };
            (&segment[..open], Some(parse_key(inner)?))
        }
        None => (segment, None),
    };
    let plain = split_byte(name, b'.').all(is_identifier);
    if !plain {
        let msg = if name.contains('%') {
            format!("`{name}` is percent-encoded: write entity set and operation names plainly")
        } else {
            format!("`{name}` is not a valid name")
        };
        return Err(malformed(msg));
    }
    Ok((name, key))
}

pub fn parse_key(raw: &str) -> Result<KeySpec, ParseError> {
    let decoded = percent_decode(raw, false)?;
    if decoded.chars().any(char::is_control) {
        return Err(malformed("control characters in a key".into()));
    }
    if decoded.is_empty() {
        return Ok(KeySpec::Empty);
    }
    if is_guid(&decoded) {
        return Ok(KeySpec::Guid(decoded.to_ascii_lowercase()));
    }
    let mut pairs = Vec::new();
    let mut rest = decoded.as_str();
    loop {
        let Some(eq) = rest.find('=') else {
            if rest.trim_start().starts_with('@') {
                return Err(ParseError::NotUnderstood(
                    "parameter aliases as keys are not inspected".into(),
                ));
            }
            return Err(malformed(format!("`{decoded}` is not a valid key")));
        };
        let prop = rest[..eq].trim();
        if !is_identifier(prop) {
            return Err(malformed(format!("`{prop}` is not a valid key property")));
        }
        let (literal, after) = split_literal(rest[eq + 1..].trim_start())?;
        pairs.push((prop.to_string(), literal));
        let after = after.trim_start();
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => return Err(malformed(format!("`{decoded}` is not a valid key"))),
        }
    }
    let mut names: Vec<&str> = pairs.iter().map(|(p, _)| p.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(malformed(format!("`{decoded}` names a key property twice")));
    }
    Ok(KeySpec::Pairs(pairs))
}

/// Splits one OData literal off the front: a quoted string (with `''` escapes), a JSON-ish
/// array `[...]` of literals, or a bare token (number, GUID, boolean, alias `@p`).
pub fn split_literal(s: &str) -> Result<(String, &str), ParseError> {
    if let Some(body) = s.strip_prefix('\'') {
        let end =
            string_end(body).ok_or_else(|| malformed("unterminated string literal".into()))?;
        return Ok((format!("'{}'", &body[..end]), &body[end + 1..]));
    }
    if s.starts_with('[') {
        let mut depth = 0usize;
        let mut i = 0;
        let bytes = s.as_bytes();
        while i < bytes.len() {
            match bytes[i] {
                b'\'' => {
                    i += 1 + string_end(&s[i + 1..])
                        .ok_or_else(|| malformed("unterminated string literal".into()))?
                }
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok((s[..=i].to_string(), &s[i + 1..]));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        return Err(malformed("unbalanced brackets in a literal".into()));
    }
    let end = s.find([',', ')']).unwrap_or(s.len());
    let token = s[..end].trim();
    let ok = !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:_@+".contains(c));
    if !ok {
        return Err(malformed(format!("`{token}` is not a valid literal")));
    }
    Ok((token.to_string(), &s[end..]))
}

/// Index of the closing quote of a string literal body (after the opening quote).
fn string_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests;
