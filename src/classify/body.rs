//! Write and action bodies: the columns a write sets, the rows it links to (`@odata.bind`, in
//! every form: relative, absolute gateway or org URL, `$n` Content-ID, arrays) and the rows it
//! creates in other tables (deep insert).

use serde_json::{Map, Value};

use super::*;
use crate::odata::KeySpec;

const MULTIPLE: &[(&str, &[Verb])] = &[
    ("CreateMultiple", &[Verb::Post]),
    ("UpdateMultiple", &[Verb::Patch]),
    ("UpsertMultiple", &[Verb::Post, Verb::Patch]),
];

fn parse(body: Option<&[u8]>, required: bool) -> Result<Value, ParseError> {
    let body = body.ok_or_else(|| ParseError::Malformed("the request body was not read".into()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ParseError::Malformed("a JSON body is required".into()))
        } else {
            Ok(Value::Object(Map::new()))
        };
    }
    serde_json::from_slice(body)
        .map_err(|e| ParseError::Malformed(format!("the body is not valid JSON: {e}")))
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
    match parse(body, true)? {
        Value::Object(obj) => entity(&obj, set, logical, verb, meta, env, out),
        _ => Err(ParseError::Malformed(
            "the body must be a JSON object".into(),
        )),
    }
}

/// One row's worth of properties.
fn entity(
    obj: &Map<String, Value>,
    set: &str,
    logical: &str,
    verb: Verb,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let mut columns = Vec::new();
    for (key, value) in obj {
        if key == "@odata.type" {
            check_type(value, logical, meta)?;
        } else if let Some(nav) = key.strip_suffix("@odata.bind") {
            bind(nav, value, logical, meta, env, out)?;
            columns.push(nav.to_string());
        } else if key.contains('@') {
            return Err(not(format!(
                "the annotation `{key}` in a write body is not inspected"
            )));
        } else if let Some(n) = meta.navigation(logical, key) {
            let target = meta
                .set_of(&n.target)
                .ok_or_else(|| not(format!("`{key}` leads to a table without an entity set")))?
                .to_string();
            let rows: Vec<&Map<String, Value>> = match value {
                // Creating the related row inline sets this row's lookup, like a bind does.
                Value::Object(o) if !n.collection => {
                    columns.push(key.clone());
                    vec![o]
                }
                Value::Object(o) => vec![o],
                Value::Array(a) => a
                    .iter()
                    .map(|v| {
                        v.as_object().ok_or_else(|| {
                            ParseError::Malformed(format!("`{key}` must hold objects"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ParseError::Malformed(format!(
                        "`{key}` is a navigation property: give an object or use {key}@odata.bind"
                    )));
                }
            };
            for row in rows {
                out.touch(&target, Verb::Post, vec![], false);
                entity(row, &target, &n.target, Verb::Post, meta, env, out)?;
            }
        } else if meta.has_property(logical, key) {
            columns.push(key.clone());
        } else {
            return Err(not(format!(
                "`{key}` is not a column or navigation property of {logical}"
            )));
        }
    }
    out.touch(set, verb, columns, false);
    Ok(())
}

fn check_type(value: &Value, logical: &str, meta: &Metadata) -> Result<(), ParseError> {
    let name = value
        .as_str()
        .map(|s| s.trim_start_matches('#'))
        .and_then(|s| s.strip_prefix(crate::odata::NAMESPACE));
    match name {
        Some(t) if meta.is_derived_from(t, logical) || t == logical => Ok(()),
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
            out.touch(&r.set, Verb::Patch, vec![], false);
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
    pub key_columns: Vec<String>,
}

pub fn resolve_reference(
    url: &str,
    meta: &Metadata,
    env: &Env<'_>,
) -> Result<Reference, ParseError> {
    if let Some(set) = env.content_ids.get(url) {
        return Ok(Reference {
            set: set.clone(),
            key_columns: vec![],
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
    let path = crate::odata::parse_path(rest)?;
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
            let primary = meta.key_of(logical).unwrap_or_default().to_vec();
            let key_columns = super::resource::key_columns(key.as_ref())
                .into_iter()
                .filter(|k| !primary.contains(k))
                .collect();
            Ok(Reference {
                set: name.clone(),
                key_columns,
            })
        }
        _ => Err(ParseError::Malformed(format!(
            "`{url}` is not a reference to a row"
        ))),
    }
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
                out.touch(&r.set, Verb::Patch, vec![], false);
            }
            out.touch(&r.set, Verb::Get, r.key_columns, false);
            Ok(())
        }
        _ => Err(ParseError::Malformed(
            "a $ref body is {\"@odata.id\": \"<url>\"}".into(),
        )),
    }
}

/// An action's parameters. `CreateMultiple`/`UpdateMultiple`/`UpsertMultiple` write every
/// `Targets` row to the bound table; any other action's entity-typed or referenced rows count
/// as reads of their tables.
pub(super) fn action(
    body: Option<&[u8]>,
    name: &str,
    bound: Option<(&str, &str)>,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let json = parse(body, false)?;
    if let (Some((_, verbs)), Some((set, logical))) =
        (MULTIPLE.iter().find(|(n, _)| *n == name), bound)
    {
        let targets = json
            .get("Targets")
            .and_then(Value::as_array)
            .ok_or_else(|| ParseError::Malformed(format!("{name} needs a Targets array")))?;
        if json.as_object().is_some_and(|o| o.len() != 1) {
            return Err(ParseError::Malformed(format!("{name} takes only Targets")));
        }
        for target in targets {
            let obj = target
                .as_object()
                .ok_or_else(|| ParseError::Malformed("Targets must hold objects".into()))?;
            if !obj.contains_key("@odata.type") {
                return Err(ParseError::Malformed(format!(
                    "every {name} target needs @odata.type"
                )));
            }
            for verb in *verbs {
                entity(obj, set, logical, *verb, meta, env, out)?;
            }
        }
        return Ok(());
    }
    references_in(&json, meta, env, out)
}

/// Every row a JSON value names: `@odata.type` entity objects, `@odata.id` and
/// `@odata.bind` references, at any depth.
pub(super) fn references_in(
    json: &Value,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    match json {
        Value::Array(a) => a.iter().try_for_each(|v| references_in(v, meta, env, out)),
        Value::Object(o) => {
            for (k, v) in o {
                if k == "@odata.type" {
                    let t = v
                        .as_str()
                        .map(|s| s.trim_start_matches('#'))
                        .and_then(|s| s.strip_prefix(crate::odata::NAMESPACE))
                        .unwrap_or_default();
                    if let Some(set) = meta.set_of(t) {
                        out.touch(set, Verb::Get, vec![], true);
                    } else if meta.entity_type(t).is_some() {
                        return Err(not(format!("`{t}` has no entity set")));
                    }
                } else if k == "@odata.id" || k.ends_with("@odata.bind") {
                    let refs: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    for r in refs {
                        let url = r
                            .as_str()
                            .ok_or_else(|| ParseError::Malformed(format!("`{k}` must be a URL")))?;
                        let r = resolve_reference(url, meta, env)?;
                        out.touch(&r.set, Verb::Get, r.key_columns, false);
                    }
                } else {
                    references_in(v, meta, env, out)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
