//! The collection-bound bulk actions `POST <set>/Microsoft.Dynamics.CRM.CreateMultiple`,
//! `UpdateMultiple` and `UpsertMultiple`. The body is `{"Targets":[{...}, ...]}` and every item
//! must carry `"@odata.type":"Microsoft.Dynamics.CRM.<logical name of the set's table>"`; items
//! are otherwise validated like a single create or update (see `payload`).
//!
//! Answers, as Dataverse documents them: CreateMultiple 200
//! `{"@odata.context":"<base>/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
//! "Ids":[...]}` in item order; UpdateMultiple 204; UpsertMultiple 204 (Dataverse documents that
//! it does not return its `UpsertMultipleResponse`). UpdateMultiple items name their row by the
//! primary key (404 when absent); UpsertMultiple items by the primary key or an `@odata.id`
//! (`<set>(<key>)`, relative or absolute, alternate keys allowed) and create the row when it is
//! absent, or when they name none. All or nothing: every item is checked before any row is
//! written. Synchronous, over the store its caller locked.

use std::collections::HashSet;

use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::data::Store;
use super::path::{self, Bulk, Key, Target};
use super::payload::{self, BadPayload, malformed};
use super::records::{self, Call};
use super::response::{Fault, SimBody, no_content, odata_json};
use super::schema::Table;

type Fields = Map<String, Value>;

pub fn run(call: &Call, store: &mut Store, table: &Table, bulk: Bulk) -> Response<SimBody> {
    let targets = targets(table, call.body).map_err(Fault::from);
    let writes = targets.and_then(|targets| match bulk {
        Bulk::Create => creates(store, table, targets),
        Bulk::Update => updates(store, table, targets),
        Bulk::Upsert => upserts(store, table, targets),
    });
    let writes = match writes {
        Ok(writes) => writes,
        Err(fault) => return fault.into(),
    };
    let mut ids = Vec::with_capacity(writes.len());
    for (id, fields, whole) in writes {
        if whole {
            store.put(table.set, &id, fields);
        } else {
            store.merge(table.set, &id, fields);
        }
        ids.push(id);
    }
    if bulk != Bulk::Create {
        return no_content();
    }
    let context = format!(
        "{}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
        call.api()
    );
    odata_json(
        StatusCode::OK,
        &json!({"@odata.context": context, "Ids": ids}),
    )
}

/// A write to apply: the row id, its columns, and whether they replace the row (a create).
type Write = (String, Fields, bool);

fn creates(store: &Store, table: &Table, targets: Vec<Fields>) -> Result<Vec<Write>, Fault> {
    let mut seen = HashSet::new();
    let mut writes = Vec::new();
    for target in targets {
        let payload = payload::parse_object(table, target)?;
        let id = payload.id.unwrap_or_else(new_id);
        if store.get(table.set, &id).is_some() || !seen.insert(id.clone()) {
            return Err(records::conflict());
        }
        writes.push((id, payload.fields, true));
    }
    Ok(writes)
}

fn updates(store: &Store, table: &Table, targets: Vec<Fields>) -> Result<Vec<Write>, Fault> {
    let mut writes = Vec::new();
    for target in targets {
        let payload = payload::parse_object(table, target)?;
        let Some(id) = payload.id else {
            let detail = format!("Every item of 'Targets' must set its key '{}'.", table.key);
            return Err(malformed(table, detail).into());
        };
        if store.get(table.set, &id).is_none() {
            return Err(records::missing(table, &Key::Id(id)));
        }
        writes.push((id, payload.fields, false));
    }
    Ok(writes)
}

fn upserts(store: &Store, table: &Table, targets: Vec<Fields>) -> Result<Vec<Write>, Fault> {
    let mut writes = Vec::new();
    for target in targets {
        let link = target
            .get("@odata.id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut payload = payload::parse_object(table, target)?;
        let key = match (payload.id.take(), link) {
            (Some(id), _) => Some(Key::Id(id)),
            (None, Some(link)) => Some(key_of(table, &link)?),
            (None, None) => None,
        };
        let existing = match &key {
            Some(key) => records::resolve(store, table, key)?,
            None => None,
        };
        writes.push(match (existing, key) {
            (Some(id), _) => (id, payload.fields, false),
            (None, Some(Key::Id(id))) => (id, payload.fields, true),
            (None, Some(Key::Columns(pairs))) => {
                for (column, value) in pairs {
                    payload.fields.insert(column, Value::String(value));
                }
                (new_id(), payload.fields, true)
            }
            (None, None) => (new_id(), payload.fields, true),
        });
    }
    Ok(writes)
}

/// The `Targets` items, each checked to be an object of the set's type.
fn targets(table: &Table, body: &[u8]) -> Result<Vec<Fields>, BadPayload> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut object)) => object.remove("Targets"),
        Ok(_) => None,
        Err(e) => return Err(malformed(table, format!("Invalid JSON: {e}."))),
    };
    let Some(Value::Array(items)) = items.filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    else {
        let detail = "The body must be an object whose 'Targets' is a non-empty array.";
        return Err(malformed(table, detail.into()));
    };
    let want = format!("Microsoft.Dynamics.CRM.{}", table.logical);
    items
        .into_iter()
        .map(|item| {
            let Value::Object(item) = item else {
                return Err(malformed(table, "Every item of 'Targets' must be an object.".into()));
            };
            match item.get("@odata.type").and_then(Value::as_str) {
                Some(t) if t.trim_start_matches('#') == want => Ok(item),
                Some(t) => Err(malformed(
                    table,
                    format!("The item type '{t}' does not match the entity set; expected '{want}'."),
                )),
                None => Err(malformed(
                    table,
                    "A resource without a type name was found, but no expected type was specified: \
                     every item of 'Targets' needs '@odata.type'."
                        .into(),
                )),
            }
        })
        .collect()
}

/// The key an `@odata.id` such as `contacts(emailaddress1='a@b.c')` names; relative, rooted or
/// absolute.
fn key_of(table: &Table, link: &str) -> Result<Key, BadPayload> {
    let rest = match link.find(super::dispatch::API) {
        Some(at) => &link[at + super::dispatch::API.len()..],
        None => link.trim_start_matches('/'),
    };
    match path::parse(rest) {
        Ok(Target::Record(t, key)) if t.set == table.set => Ok(key),
        _ => Err(malformed(
            table,
            format!(
                "The '@odata.id' '{link}' does not name a row of '{}'.",
                table.set
            ),
        )),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
