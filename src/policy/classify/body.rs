//! Write and action bodies: the columns a write sets, the rows it links to (`@odata.bind`, in
//! every form: relative, absolute gateway or org URL, `$n` Content-ID, arrays) and the rows it
//! creates in other tables (deep insert).
//!
//! Pure. Fail closed by construction: every JSON key of a body is sorted by [`Key::of`] into
//! what the classifier understands — a column, a navigation property (deep insert), a
//! `nav@odata.bind` link, `@odata.type`, `@odata.id` where a row names itself, and the instance
//! annotations a read returns and a write ignores (`@odata.etag`, `@odata.context`) — and each
//! kind is accounted for in an exhaustive match; any other annotation spelling is refused with
//! the key named. Duplicate keys are refused at any depth ([`super::json`]). Type names are
//! understood qualified by the schema's namespace or alias (`Microsoft.Dynamics.CRM.contact`,
//! `mscrm.contact`, with or without `#`); an unqualified or unknown type is refused.
//!
//! Bulk writes: `CreateMultiple`, `UpdateMultiple` and `UpsertMultiple` bound to a table's
//! collection are writes on that table (POST, PATCH, both) and need no `actions` entry; every
//! `Targets` row is checked like a write body, its `@odata.type` must be the table's own type,
//! and an `@odata.id` in it must name a row of that table (an upsert's alternate key).

mod action;
mod keys;

use serde_json::{Map, Value};

use super::*;
use crate::policy::odata::KeySpec;
pub(super) use action::{action, bulk_verbs, references_in};
use keys::{Key, TypeName, type_name};

fn parse(body: Option<&[u8]>, required: bool) -> Result<Value, ParseError> {
    let body = body.ok_or_else(|| ParseError::Malformed("the request body was not read".into()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ParseError::Malformed("a JSON body is required".into()))
        } else {
            Ok(Value::Object(Map::new()))
        };
    }
    super::json::parse(body)
        .map_err(|e| ParseError::Malformed(format!("the body is not valid JSON: {e}")))
}

/// The row a body describes, and what it may say about itself.
struct Row<'a> {
    set: &'a str,
    logical: &'a str,
    verb: Verb,
    /// A bulk write's target: `@odata.id` may name the row itself (a row of `set`).
    target: bool,
}

/// A POST or PATCH body for a row of `set`.
pub(super) fn write(
    body: Option<&[u8]>,
    set: &str,
    logical: &str,
    verb: Verb,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let row = Row {
        set,
        logical,
        verb,
        target: false,
    };
    match parse(body, true)? {
        Value::Object(obj) => entity(&obj, &row, meta, env, out),
        _ => Err(ParseError::Malformed(
            "the body must be a JSON object".into(),
        )),
    }
}

/// One row's worth of properties.
fn entity(
    obj: &Map<String, Value>,
    row: &Row<'_>,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let logical = row.logical;
    let mut columns = Columns::new();
    for (key, value) in obj {
        match Key::of(key)? {
            Key::Ignored => {}
            Key::Type => check_type(value, logical, meta)?,
            Key::Id if row.target => {
                let r = resolve_reference(
                    value
                        .as_str()
                        .ok_or_else(|| ParseError::Malformed("`@odata.id` must be a URL".into()))?,
                    meta,
                    env,
                )?;
                if r.set != row.set {
                    return Err(ParseError::Malformed(format!(
                        "`@odata.id` of a {} row names a row of {}",
                        row.set, r.set
                    )));
                }
                columns.extend(&r.key_columns);
            }
            Key::Id => {
                return Err(not(format!(
                    "`@odata.id` in a write body of {} is not inspected",
                    row.set
                )));
            }
            Key::PropertyType(p) => {
                return Err(not(format!(
                    "the annotation `{p}@odata.type` in a write body is not inspected"
                )));
            }
            Key::Bind(nav) => {
                bind(nav, value, logical, meta, env, out)?;
                columns.push(nav);
            }
            Key::Property(key) => property(key, value, logical, meta, env, out, &mut columns)?,
        }
    }
    out.touch(row.set, row.verb, columns, false);
    Ok(())
}

/// A plain key of a write body: a column, or a navigation property holding rows to create.
fn property(
    key: &str,
    value: &Value,
    logical: &str,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
    columns: &mut Columns,
) -> Result<(), ParseError> {
    let Some(n) = meta.navigation(logical, key) else {
        if meta.has_property(logical, key) {
            // A column holds a value, never rows or annotations: nothing in it goes unread.
            if matches!(value, Value::Object(_) | Value::Array(_)) {
                return Err(ParseError::Malformed(format!(
                    "`{key}` is a column of {logical}: give it a string, number, true, false or null"
                )));
            }
            columns.push(key);
            return Ok(());
        }
        return Err(not(format!(
            "`{key}` is not a column or navigation property of {logical}"
        )));
    };
    let target = meta
        .set_of(&n.target)
        .ok_or_else(|| not(format!("`{key}` leads to a table without an entity set")))?
        .to_string();
    let rows: Vec<&Map<String, Value>> = match value {
        // Creating the related row inline sets this row's lookup, like a bind does.
        Value::Object(o) if !n.collection => {
            columns.push(key);
            vec![o]
        }
        Value::Object(o) => vec![o],
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_object()
                    .ok_or_else(|| ParseError::Malformed(format!("`{key}` must hold objects")))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ParseError::Malformed(format!(
                "`{key}` is a navigation property: give an object or use {key}@odata.bind"
            )));
        }
    };
    let nested = Row {
        set: &target,
        logical: &n.target,
        verb: Verb::Post,
        target: false,
    };
    for row in rows {
        out.touch(&target, Verb::Post, Columns::new(), false);
        entity(row, &nested, meta, env, out)?;
    }
    Ok(())
}

fn check_type(value: &Value, logical: &str, meta: &Metadata) -> Result<(), ParseError> {
    match type_name(value, meta)? {
        TypeName::Entity(t) if meta.is_derived_from(t, logical) || t == logical => Ok(()),
        _ => Err(ParseError::Malformed(format!(
            "@odata.type {value} does not match {logical}"
        ))),
    }
}

fn bind(
    nav: &str,
    value: &Value,
    logical: &str,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let n = meta
        .navigation(logical, nav)
        .ok_or_else(|| not(format!("`{nav}` is not a navigation property of {logical}")))?;
    let urls: Vec<&str> = match value {
        Value::String(s) => vec![s],
        Value::Array(a) if n.collection => a
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    ParseError::Malformed(format!("`{nav}@odata.bind` must hold URLs"))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ParseError::Malformed(format!(
                "`{nav}@odata.bind` must be a URL{}",
                if n.collection {
                    " or a list of URLs"
                } else {
                    ""
                }
            )));
        }
    };
    let expected = meta
        .set_of(&n.target)
        .ok_or_else(|| not(format!("`{nav}` leads to a table without an entity set")))?;
    for url in urls {
        let r = resolve_reference(url, meta, env)?;
        if r.set != expected {
            return Err(ParseError::Malformed(format!(
                "`{nav}@odata.bind` must name a row of {expected}, not {}",
                r.set
            )));
        }
        // Binding rows to a collection-valued navigation sets THEIR lookup: a change to them.
        if n.collection {
            out.touch(&r.set, Verb::Patch, Columns::new(), false);
        }
        out.touch(&r.set, Verb::Get, r.key_columns, false);
    }
    Ok(())
}

/// The entity set of a record reference: `contacts(<id>)`, `/contacts(<id>)`,
/// `/api/data/v9.2/contacts(<id>)`, an absolute URL of the org or of this gateway, or `$1`.
/// A row a body refers to: its entity set and the alternate-key columns the reference names.
pub struct Reference {
    pub set: String,
    pub key_columns: Columns,
}

pub fn resolve_reference(
    url: &str,
    meta: &Metadata,
    env: &Env<'_>,
) -> Result<Reference, ParseError> {
    if let Some(set) = env.content_ids.get(url) {
        return Ok(Reference {
            set: set.clone(),
            key_columns: Columns::new(),
        });
    }
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") || lower.starts_with("https://") {
        let base = std::iter::once(&env.urls.org)
            .chain(&env.urls.gateway)
            .find(|b| lower.starts_with(&b.to_ascii_lowercase()) && url[b.len()..].starts_with('/'))
            .ok_or_else(|| ParseError::Malformed(format!("`{url}` refers to another host")))?;
        &url[base.len()..]
    } else {
        url
    };
    let rest = rest.trim_start_matches('/');
    let prefix = format!("api/data/{}/", env.urls.api_version);
    let rest = rest.strip_prefix(&prefix).unwrap_or(rest);
    let path = crate::policy::odata::parse_path(rest)?;
    match (&path.head, path.tail.is_empty()) {
        (
            Head::Name {
                name,
                key: key @ Some(KeySpec::Guid(_) | KeySpec::Pairs(_)),
            },
            true,
        ) if meta.entity_set(name).is_some() => {
            let logical = meta
                .entity_set(name)
                .map(|t| t.logical_name.as_str())
                .unwrap_or_default();
            Ok(Reference {
                set: name.to_string(),
                key_columns: super::resource::alternate_key(meta, logical, key.as_ref())?,
            })
        }
        _ => Err(ParseError::Malformed(format!(
            "`{url}` is not a reference to a row"
        ))),
    }
}

/// The body of a one-column `PUT`: `{"value": <scalar>}` (instance annotations a read returns
/// may come along); anything else is refused.
pub(super) fn property_value(body: Option<&[u8]>, column: &str) -> Result<(), ParseError> {
    let shape = || {
        ParseError::Malformed(format!(
            "a PUT of the column `{column}` sends {{\"value\": <value>}}"
        ))
    };
    let json = parse(body, true)?;
    let obj = json.as_object().ok_or_else(shape)?;
    let mut value = false;
    for (key, v) in obj {
        match Key::of(key)? {
            Key::Ignored => {}
            Key::Property("value") if !v.is_object() && !v.is_array() => value = true,
            Key::Property(_) | Key::Bind(_) | Key::Type | Key::PropertyType(_) | Key::Id => {
                return Err(shape());
            }
        }
    }
    if value { Ok(()) } else { Err(shape()) }
}

/// The body of a `$ref` change: `{"@odata.id": "<url>"}`.
pub(super) fn reference_body(
    body: &[u8],
    verb: Verb,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    match parse(Some(body), true)? {
        Value::Object(o) if o.len() == 1 && o.get("@odata.id").is_some_and(Value::is_string) => {
            let r = resolve_reference(o["@odata.id"].as_str().unwrap_or_default(), meta, env)?;
            if verb == Verb::Patch {
                out.touch(&r.set, Verb::Patch, Columns::new(), false);
            }
            out.touch(&r.set, Verb::Get, r.key_columns, false);
            Ok(())
        }
        _ => Err(ParseError::Malformed(
            "a $ref body is {\"@odata.id\": \"<url>\"}".into(),
        )),
    }
}

/// A JSON alias value (`@p={"@odata.id":"..."}`), parsed like a body (duplicate keys refused).
pub(super) fn alias_json(text: &str) -> Result<Value, ParseError> {
    super::json::parse(text.as_bytes())
        .map_err(|e| ParseError::Malformed(format!("alias value `{text}` is not valid JSON: {e}")))
}
