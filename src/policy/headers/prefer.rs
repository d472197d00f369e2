//! The `Prefer` header (RFC 7240): preferences parsed with quoted strings, the harmless ones
//! re-serialised for the org, and OData's `odata.include-annotations` filters evaluated.
//!
//! Pure. A header that does not parse is an error (the caller refuses the request); a
//! preference is forwarded only when [`Preference::forwarded`] lists it, refusal of the rest
//! being the default arm.

use http::header::HeaderMap;

use super::PREFER;

/// One preference of a `Prefer` header (RFC 7240): `name[=value][; param[=value]]...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    /// Lower case (preference names are case-insensitive).
    pub name: String,
    /// The value, unquoted.
    pub value: Option<String>,
    /// Parameters, names lower case, values unquoted.
    pub params: Vec<(String, Option<String>)>,
}

impl Preference {
    /// The preference as it is sent upstream, or `None` when it is not forwarded. Only harmless
    /// preferences pass (no `respond-async`, no `odata.callback`), without parameters, their
    /// value re-quoted as needed.
    pub(super) fn forwarded(&self) -> Option<String> {
        let valid = match self.name.as_str() {
            "return" => matches!(self.value.as_deref(), Some("representation" | "minimal")),
            "odata.maxpagesize" => self
                .value
                .as_deref()
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())),
            "odata.include-annotations" => self.value.is_some(),
            "odata.continue-on-error" | "odata.track-changes" => {
                matches!(self.value.as_deref(), None | Some("true" | "false"))
            }
            _ => false,
        };
        if !valid {
            return None;
        }
        Some(match &self.value {
            None => self.name.clone(),
            Some(v) if self.name == "odata.include-annotations" => {
                format!("{}={}", self.name, quoted(v))
            }
            Some(v) => format!("{}={}", self.name, word(v)),
        })
    }
}

/// Every preference of every `Prefer` header, in order. Commas and semicolons inside quoted
/// strings belong to the value (`odata.include-annotations="A,B"` is one preference).
pub fn preferences(headers: &HeaderMap) -> Result<Vec<Preference>, String> {
    let mut out = Vec::new();
    for value in headers.get_all(&PREFER) {
        let text = value
            .to_str()
            .map_err(|_| "the Prefer header is not visible ASCII".to_string())?;
        for element in split_outside_quotes(text, ',')? {
            if let Some(p) = preference(element)? {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn preference(element: &str) -> Result<Option<Preference>, String> {
    let mut pieces = split_outside_quotes(element, ';')?.into_iter();
    let first = pieces.next().unwrap_or_default();
    let Some((name, value)) = pair(first)? else {
        return Ok(None);
    };
    let mut params = Vec::new();
    for piece in pieces {
        if let Some(p) = pair(piece)? {
            params.push(p);
        }
    }
    Ok(Some(Preference {
        name,
        value,
        params,
    }))
}

/// `token [= (token | quoted-string)]`, or `None` for an empty piece.
fn pair(piece: &str) -> Result<Option<(String, Option<String>)>, String> {
    let piece = piece.trim_matches([' ', '\t']);
    if piece.is_empty() {
        return Ok(None);
    }
    let bad = || format!("the Prefer header is not RFC 7240 at `{piece}`");
    let (name, value) = match piece.split_once('=') {
        Some((n, v)) => (
            n.trim_end_matches([' ', '\t']),
            Some(v.trim_start_matches([' ', '\t'])),
        ),
        None => (piece, None),
    };
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(bad());
    }
    let value = match value {
        None => None,
        Some(v) if v.starts_with('"') => Some(unquote(v).ok_or_else(bad)?),
        Some(v) if !v.is_empty() && v.bytes().all(is_tchar) => Some(v.to_string()),
        Some(_) => return Err(bad()),
    };
    Ok(Some((name.to_ascii_lowercase(), value)))
}

/// Splits at `sep` outside quoted strings; an unterminated quoted string is an error.
fn split_outside_quotes(text: &str, sep: char) -> Result<Vec<&str>, String> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => quoted = !quoted,
            (false, _, c) if c == sep => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("the Prefer header has an unterminated quoted string".into());
    }
    out.push(&text[start..]);
    Ok(out)
}

/// The content of a quoted string that makes up all of `v`.
fn unquote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn word(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(is_tchar) {
        v.to_string()
    } else {
        quoted(v)
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether the `odata.include-annotations` preferences ask for the annotation `term` (e.g.
/// `OData.Community.Display.V1.FormattedValue`). OData's rules: `*` and `Namespace.*` match by
/// prefix, the most specific filter wins, an exclusion (`-...`) wins a tie. Any preference that
/// asks for it counts, names are compared without case: the org may read either.
pub fn asks_annotation(prefs: &[Preference], term: &str) -> bool {
    prefs
        .iter()
        .filter(|p| p.name == "odata.include-annotations")
        .filter_map(|p| p.value.as_deref())
        .any(|list| annotation_included(list, term))
}

fn annotation_included(list: &str, term: &str) -> bool {
    let term = term.to_ascii_lowercase();
    // (specificity, excluded) of the best filter so far.
    let mut best: Option<(usize, bool)> = None;
    for filter in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (excluded, pattern) = match filter.strip_prefix('-') {
            Some(p) => (true, p.trim()),
            None => (false, filter),
        };
        let pattern = pattern.to_ascii_lowercase();
        let specificity = if pattern == "*" {
            Some(0)
        } else if let Some(ns) = pattern.strip_suffix(".*") {
            term.strip_prefix(ns)
                .is_some_and(|rest| rest.starts_with('.'))
                .then_some(1 + ns.len())
        } else {
            // A term may carry a qualifier: `Term#Qualifier` still names the term.
            let name = pattern.split('#').next().unwrap_or_default();
            (name == term).then_some(usize::MAX)
        };
        if let Some(s) = specificity {
            best = match best {
                Some((b, _)) if b > s => best,
                Some((b, ex)) if b == s => Some((s, ex || excluded)),
                _ => Some((s, excluded)),
            };
        }
    }
    best.is_some_and(|(_, excluded)| !excluded)
}
