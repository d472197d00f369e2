//! The independent side of the `classify_url` invariant: a plain lexical scan, sharing no code
//! with the classifier, of everything in a request that could name data — every identifier in
//! the percent-decoded path and query, every JSON key of the body and every annotation value
//! (`x@odata.bind`, `@odata.id`, `@odata.type`) — mapped to the tables it could reach through
//! the tenant's metadata: an entity set name, a table's logical name, or a navigation property
//! name (its target table). Comparisons ignore case.
//!
//! It errs on the side of reaching MORE tables, never fewer, except for text that is data and
//! not a name, and for a lookup named where only columns are named (see [`COLUMN`]): single-quoted OData literals (unless they are a `PropertyName='...'` argument, the
//! value `@p='...'` of an alias used as `PropertyName=@p`, or an XML attribute), double-quoted values inside `[...]` lists, the
//! fetchXml `value` attribute, and plain JSON string values.

use std::collections::BTreeSet;

use dataverse_gateway::policy::metadata::Metadata;

/// Percent-decodes `s` (`+` stays as is); invalid escapes are kept verbatim.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The part of a request target (`path[?query]`) that can name data. All of it, except in a
/// table definition read (a path whose first segment is `EntityDefinitions`): there the system
/// query options (`$select`, `$filter`, `$orderby`, `$expand`, ...) name properties of the
/// metadata types (`EntityMetadata`, `AttributeMetadata`, ...), which have no navigation to
/// any row, so a table's navigation name inside them reaches nothing. Every other option (a
/// custom one, `fetchXml`, an alias `@p`) is kept: it could carry a query of its own.
pub fn data_text(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let decoded = percent_decode(path);
    let first = decoded
        .trim_start_matches('/')
        .split(['/', '('])
        .next()
        .unwrap_or("");
    if first != "EntityDefinitions" {
        return target.to_string();
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|option| !percent_decode(option).trim_start().starts_with('$'))
        .collect();
    format!("{path}?{}", kept.join("&"))
}

/// Identifiers of a URL (path and query, decoded), skipping the literals described above.
pub fn url_identifiers(url: &str) -> Vec<String> {
    let text: Vec<char> = percent_decode(url).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c == '\'' || c == '"' {
            let end = closing(&text, i, c);
            if counts(&text, i, c) {
                let from = out.len();
                collect(&text[i + 1..end], &mut out);
                // A single-quoted name that counts is an XML attribute's value (fetchXml) or a
                // query function's `PropertyName`: both name columns by logical name (a path,
                // `createdby/fullname`, follows its navigations and keeps counting them).
                if c == '\'' && !text[i + 1..end].contains(&'/') {
                    for name in &mut out[from..] {
                        name.insert(0, COLUMN);
                    }
                }
            }
            i = end + 1;
        } else if is_ident_start(c) {
            let start = i;
            while i < text.len() && is_ident(text[i]) {
                i += 1;
            }
            out.push(text[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    out
}

/// Index of the quote closing the one at `open` (a doubled quote is an escaped one), or the end.
fn closing(text: &[char], open: usize, q: char) -> usize {
    let mut i = open + 1;
    while i < text.len() {
        if text[i] == q {
            if text.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    text.len()
}

/// Whether the quoted text opening at `open` may be a name rather than data.
fn counts(text: &[char], open: usize, q: char) -> bool {
    let before: String = text[..open].iter().collect();
    let trimmed = before.trim_end();
    if q == '"' {
        return !(trimmed.ends_with('[')
            || trimmed.ends_with(',')
            || ends_with_word(trimmed, "value="));
    }
    if ends_with_word(trimmed, "PropertyName=") {
        return true;
    }
    let Some(head) = trimmed.strip_suffix('=') else {
        return false;
    };
    // `@alias='...'` or an XML attribute ` name='...'` (not `value`), not a key `(col='...')`.
    let word_start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !is_ident(*c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &head[word_start..];
    let prev = head[..word_start].chars().last();
    match prev {
        // An alias's literal is a name only where the alias is a `PropertyName` argument.
        Some('@') => {
            let all: String = text.iter().collect::<String>().to_ascii_lowercase();
            all.contains(&format!("propertyname=@{}", word.to_ascii_lowercase()))
        }
        Some(c) if c.is_whitespace() => !word.eq_ignore_ascii_case("value"),
        _ => false,
    }
}

fn ends_with_word(s: &str, w: &str) -> bool {
    s.len() >= w.len()
        && s.is_char_boundary(s.len() - w.len())
        && s[s.len() - w.len()..].eq_ignore_ascii_case(w)
}

fn collect(text: &[char], out: &mut Vec<String>) {
    let s: String = text.iter().collect();
    out.extend(url_identifiers(&s.replace(['\'', '"'], " ")));
}

/// Identifiers of a JSON body: every key, and the values of annotation keys (`...@...`).
/// `None` when the body is not JSON.
pub fn json_identifiers(body: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    walk(&v, false, &mut out);
    Some(out)
}

fn walk(v: &serde_json::Value, annotation: bool, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.extend(url_identifiers(k));
                walk(v, k.contains('@'), out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, annotation, out)),
        serde_json::Value::String(s) if annotation => out.extend(url_identifiers(s)),
        _ => {}
    }
}

/// Marks an identifier found where a column is named by its logical name (a fetchXml attribute
/// value, a query function's `PropertyName`). There a lookup's logical name, which is also the
/// name of its single-valued navigation property (`createdby`), is that lookup column: neither
/// fetchXml nor `PropertyName` has a syntax that follows a navigation (fetchXml joins with
/// `<link-entity name=...>`, a logical name, which still counts). So such an identifier reaches
/// what an entity set, a logical name or a collection-valued navigation of that name reaches,
/// but not a single-valued navigation's target.
const COLUMN: char = '#';

/// The entity sets the identifiers could reach in `meta`.
pub fn reachable(meta: &Metadata, idents: &[String]) -> BTreeSet<String> {
    let wanted: BTreeSet<String> = idents
        .iter()
        .map(|i| i.trim_start_matches(COLUMN).to_ascii_lowercase())
        .collect();
    // Names found only where a column is named by its logical name.
    let columns_only: BTreeSet<String> = idents
        .iter()
        .filter(|i| i.starts_with(COLUMN))
        .map(|i| i[1..].to_ascii_lowercase())
        .filter(|i| {
            !idents
                .iter()
                .any(|j| !j.starts_with(COLUMN) && j.eq_ignore_ascii_case(i))
        })
        .collect();
    let mut sets = BTreeSet::new();
    for (set, logical) in meta.entity_sets() {
        if wanted.contains(&set.to_ascii_lowercase())
            || wanted.contains(&logical.to_ascii_lowercase())
        {
            sets.insert(set.to_string());
        }
    }
    for ty in meta.entity_types() {
        for (name, nav) in &ty.navigation {
            let name = name.to_ascii_lowercase();
            if wanted.contains(&name)
                && (nav.collection || !columns_only.contains(&name))
                && let Some(set) = meta.set_of(&nav.target)
            {
                sets.insert(set.to_string());
            }
        }
    }
    sets
}
