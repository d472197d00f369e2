//! One column or one lookup of one row: `GET <set>(<key>)/<column>` answers
//! `{"@odata.context":".../$metadata#<set>(<id>)/<column>","value":...}`, `.../<column>/$value`
//! the bare value as `text/plain`; `PUT .../<column>` with `{"value":...}` sets it and `DELETE`
//! clears it (both 204); `GET <set>(<key>)/<nav>` answers the row the lookup points at, in the
//! other table, like a retrieve of that row.
//!
//! A null value, or an empty lookup, answers 204 No Content as in Dataverse. Lookup columns
//! (`_x_value`) and the key cannot be written here (Dataverse sets lookups through `$ref` or
//! `@odata.bind`). Synchronous, over the store its caller locked.

use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::data::Store;
use super::path::Key;
use super::records::{self, Call};
use super::response::{
    Fault, SimBody, bad_request, dataverse_error, no_content, odata_json, with_body,
};
use super::schema::{Lookup, Table, table as table_of};

/// Reads one column, as JSON or, when `raw`, as text.
pub fn read(
    call: &Call,
    store: &Store,
    table: &Table,
    key: &Key,
    column: &str,
    raw: bool,
) -> Response<SimBody> {
    let id = match found(store, table, key) {
        Ok(id) => id,
        Err(fault) => return fault.into(),
    };
    let value = if column == table.key {
        Value::String(id.clone())
    } else {
        store
            .get(table.set, &id)
            .and_then(|row| row.fields.get(column).cloned())
            .unwrap_or(Value::Null)
    };
    match value {
        Value::Null => no_content(),
        Value::String(text) if raw => with_body(StatusCode::OK, "text/plain", text),
        other if raw => with_body(StatusCode::OK, "text/plain", other.to_string()),
        value => {
            let context = format!("{}/$metadata#{}({id})/{column}", call.api(), table.set);
            odata_json(
                StatusCode::OK,
                &json!({"@odata.context": context, "value": value}),
            )
        }
    }
}

/// `PUT` (the body's `value`) or, when `clear`, `DELETE` of one column.
pub fn write(
    call: &Call,
    store: &mut Store,
    table: &Table,
    key: &Key,
    column: &str,
    clear: bool,
) -> Response<SimBody> {
    if column == table.key || column.starts_with('_') {
        return bad_request(&format!(
            "The property '{column}' of entity '{}' cannot be set through this request.",
            table.logical
        ));
    }
    let value = if clear {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(call.body) {
            Ok(Value::Object(mut body)) if body.contains_key("value") => {
                body.remove("value").unwrap_or(Value::Null)
            }
            _ => {
                let message = format!(
                    "Error identified in Payload provided by the user for Entity :'{}'. The body must \
                     be a JSON object with a 'value' member.",
                    table.set
                );
                return dataverse_error(StatusCode::BAD_REQUEST, "0x80040333", &message);
            }
        }
    };
    let id = match found(store, table, key) {
        Ok(id) => id,
        Err(fault) => return fault.into(),
    };
    let mut fields = Map::new();
    fields.insert(column.to_string(), value);
    store.merge(table.set, &id, fields);
    no_content()
}

/// The row a single-valued navigation property points at.
pub fn navigate(
    call: &Call,
    store: &Store,
    table: &Table,
    key: &Key,
    lookup: &Lookup,
) -> Response<SimBody> {
    let Some(target) = table_of(lookup.target_set) else {
        return no_content();
    };
    let select = match call.select(target) {
        Ok(select) => select,
        Err(fault) => return fault.into(),
    };
    let id = match found(store, table, key) {
        Ok(id) => id,
        Err(fault) => return fault.into(),
    };
    let linked = store
        .get(table.set, &id)
        .and_then(|row| row.fields.get(lookup.column))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let Some(linked) = linked else {
        return no_content();
    };
    match store.get(target.set, &linked) {
        Some(row) => records::entity(call, store, target, &linked, row, select, StatusCode::OK),
        None => records::not_found(target, &Key::Id(linked)),
    }
}

/// The id of the row `key` addresses, or why there is none.
fn found(store: &Store, table: &Table, key: &Key) -> Result<String, Fault> {
    records::resolve(store, table, key)?.ok_or_else(|| records::missing(table, key))
}
