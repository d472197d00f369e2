//! Action bodies: bulk writes (`CreateMultiple`, `UpdateMultiple`, `UpsertMultiple`) as writes
//! on their table, and the rows any other action's parameters name.

use serde_json::Value;

use super::keys::{Key, TypeName, type_name};
use super::{Row, entity, parse, resolve_reference};
use crate::policy::classify::*;

/// Bulk write actions: the verbs they imply on their bound table.
const MULTIPLE: &[(&str, &[Verb])] = &[
    ("CreateMultiple", &[Verb::Post]),
    ("UpdateMultiple", &[Verb::Patch]),
    ("UpsertMultiple", &[Verb::Post, Verb::Patch]),
];

/// The verbs a bulk write `name` implies, when it is one.
pub(in crate::policy::classify) fn bulk_verbs(name: &str) -> Option<&'static [Verb]> {
    MULTIPLE.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// An action's parameters. Bulk writes bound to a collection write every `Targets` row to the
/// bound table; any other action is listed as a [`Use::Action`], and its entity-typed or
/// referenced rows count as reads of their tables.
pub(in crate::policy::classify) fn action(
    body: Option<&[u8]>,
    name: &str,
    bound: Option<(&str, &str)>,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    let json = parse(body, false)?;
    let (Some(verbs), Some((set, logical))) = (bulk_verbs(name), bound) else {
        out.uses.push(Use::Action(name.to_string()));
        return references_in(&json, meta, env, out);
    };
    let targets = match json.as_object().map(|o| (o.len(), o.get("Targets"))) {
        Some((1, Some(Value::Array(t)))) => t,
        _ => {
            return Err(ParseError::Malformed(format!(
                "{name} takes one parameter, a Targets array"
            )));
        }
    };
    for target in targets {
        let obj = target
            .as_object()
            .ok_or_else(|| ParseError::Malformed("Targets must hold objects".into()))?;
        if !obj.contains_key("@odata.type") {
            return Err(ParseError::Malformed(format!(
                "every {name} target needs @odata.type"
            )));
        }
        for verb in verbs {
            let row = Row {
                set,
                logical,
                verb: *verb,
                target: true,
            };
            entity(obj, &row, meta, env, out)?;
        }
    }
    Ok(())
}

/// Every row a JSON value names: `@odata.type` entity objects, `@odata.id` and
/// `@odata.bind` references, at any depth. Other annotations are refused.
pub(in crate::policy::classify) fn references_in(
    json: &Value,
    meta: &Metadata,
    env: &Env<'_>,
    out: &mut Classified,
) -> Result<(), ParseError> {
    match json {
        Value::Array(a) => a.iter().try_for_each(|v| references_in(v, meta, env, out)),
        Value::Object(o) => o.iter().try_for_each(|(k, v)| match Key::of(k)? {
            Key::Type | Key::PropertyType(_) => {
                if let TypeName::Entity(t) = type_name(v, meta)? {
                    let set = meta
                        .set_of(t)
                        .ok_or_else(|| not(format!("`{t}` has no entity set")))?;
                    out.touch(set, Verb::Get, Columns::new(), true);
                }
                Ok(())
            }
            Key::Id | Key::Bind(_) => {
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
                Ok(())
            }
            Key::Ignored => Ok(()),
            Key::Property(_) => references_in(v, meta, env, out),
        }),
        _ => Ok(()),
    }
}
