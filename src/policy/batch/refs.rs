//! Content-ID references: `$n` at the start of a request target (`$1/primarycontactid/$ref`) and
//! as the value of an `@odata.bind` or `@odata.id` property anywhere in a JSON body
//! (`"primarycontactid@odata.bind": "$1"`, also in arrays and deep-insert objects).
//!
//! Pure. Invariant: a reference must name a Content-ID defined by an EARLIER request of the same
//! change set; outside a change set there is nothing to refer to. `$metadata` is a resource, not
//! a reference. Bodies that are not JSON carry no references.

use serde_json::Value;

use super::{BatchError, PartRef};

/// Checks every reference in `part` against the Content-IDs `defined` before it.
pub fn check(part: &PartRef<'_>, defined: &[&str], request: usize) -> Result<(), BatchError> {
    let mut found = Vec::new();
    if let Some(id) = target_reference(part.target) {
        found.push(id.to_string());
    }
    // Only an object or an array can hold a link property: any other body (most often none)
    // is not parsed.
    let container = part
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    if container && let Ok(json) = serde_json::from_slice::<Value>(part.body) {
        body_references(&json, &mut found);
    }
    match found.into_iter().find(|id| !defined.contains(&id.as_str())) {
        Some(id) => Err(BatchError::UnknownContentId { request, id }),
        None => Ok(()),
    }
}

/// The Content-ID a target refers to, if it starts with `$`.
fn target_reference(target: &str) -> Option<&str> {
    let id = reference(target)?;
    let resource = id.split(['?', '#']).next();
    (resource != Some("metadata")).then_some(id)
}

/// `$1/x` -> `1`. Like ODataLib, the Content-ID runs to the first `/`: `$1?x` names `1?x`.
fn reference(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('$')?;
    rest.split('/').next()
}

fn body_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key.ends_with("@odata.bind") || key == "@odata.id" {
                    link_references(value, found);
                }
                body_references(value, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| body_references(v, found)),
        _ => {}
    }
}

/// References in a link value: a string or an array of strings.
fn link_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(link) => found.extend(reference(link).map(str::to_string)),
        Value::Array(links) => links.iter().for_each(|v| link_references(v, found)),
        _ => {}
    }
}
