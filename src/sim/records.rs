//! Table operations of the Dataverse side: list (with `$select`, `$top`, simple `$filter`,
//! `$expand` of lookups and paging; `fetchXml` lists go to `fetch`), retrieve, create, upsert and
//! delete, plus the streamed `annotations` list. Rows are rendered by `expand::View`, with the
//! annotations `Prefer` asks for (echoed in `Preference-Applied`).
//!
//! Each operation takes an authenticated, privilege-checked [`Call`] and the store, locked by the
//! caller (so a `$batch` change set can run several operations under one lock), and returns a
//! response. Invariants: these functions are synchronous, so the lock is never held across an
//! await; every URL in a response is absolute to the simulator's base URL.

use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use super::data::{Row, Store};
use super::expand::{self, View};
use super::filter;
use super::path::Key;
use super::prefer::{self, Annotations};
use super::query::{self, Cookie, Query};
use super::response::{
    Fault, ODATA_JSON, SimBody, dataverse_error, no_content, odata_json, odata_text, set_header,
};
use super::schema::Table;
use super::state::Shared;
use super::{fetch, payload, stream};

/// Dataverse's default page size.
pub const DEFAULT_PAGE: usize = 5000;

/// One authenticated request to a table.
pub struct Call<'a> {
    pub shared: &'a Shared,
    pub headers: &'a HeaderMap,
    pub query: Query,
    pub body: &'a [u8],
    /// The annotations `Prefer: odata.include-annotations` asks for.
    pub annotations: Annotations,
    /// (user, application user) when the request runs as a user on the app's behalf.
    pub impersonation: Option<(String, String)>,
}

impl Call<'_> {
    /// `{base}/api/data/v9.2`.
    pub fn api(&self) -> String {
        format!("{}/api/data/v9.2", self.shared.base_url)
    }

    pub fn prefer(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// The `$select` columns, or the 400 Dataverse sends for an unknown one.
    pub fn select(&self, table: &Table) -> Result<Option<&[String]>, Fault> {
        let select = self.query.select.as_deref();
        match select.into_iter().flatten().find(|c| !table.has_column(c)) {
            Some(c) => Err(unknown_property(table, c)),
            None => Ok(select),
        }
    }

    /// The simple `$filter` conditions (see `filter`) on columns the table has; `None` when
    /// there is no filter or one the simulator ignores. Conditions on other columns are dropped:
    /// the simulated tables lack columns real ones have (`statecode eq 0` is a common filter).
    fn filter(&self, table: &Table) -> Option<Vec<filter::Condition>> {
        let mut conditions = filter::parse(self.query.filter.as_deref()?)?;
        conditions.retain(|c| table.has_column(&c.property));
        Some(conditions)
    }
}

fn unknown_property(table: &Table, name: &str) -> Fault {
    Fault::bad_request(format!(
        "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{}'.",
        table.logical
    ))
}

pub fn list(call: &Call, store: &Store, table: &'static Table) -> Response<SimBody> {
    if table.set == "annotations" {
        return stream_annotations(call, store, table);
    }
    if let Some(xml) = &call.query.fetch_xml {
        return fetch::serve(call, store, table, xml);
    }
    let select = match call.select(table) {
        Ok(select) => select,
        Err(fault) => return fault.into(),
    };
    let expand = match expand::parse(table, call.query.expand.as_deref()) {
        Ok(expand) => expand,
        Err(fault) => return fault.into(),
    };
    let conditions = call.filter(table);
    let max_page = prefer::max_page_size(call.prefer()).filter(|_| call.query.top.is_none());
    let page_size = call.query.top.or(max_page).unwrap_or(DEFAULT_PAGE);
    let after = call.query.skip.as_ref().map(|c| c.last_id.as_str());
    let keep = |id: &str, row: &Row| match (&conditions, row.to_json(table, id, None)) {
        (Some(conditions), Value::Object(entity)) => filter::matches(conditions, &entity),
        _ => true,
    };
    let mut rows = store.page_where(table.set, after, page_size.saturating_add(1), keep);
    let more = rows.len() > page_size && call.query.top.is_none();
    rows.truncate(page_size);
    let view = View {
        store,
        select,
        expand: &expand,
        annotations: &call.annotations,
    };
    let mut text = collection_text(call, table, &view, &rows);
    if let (true, Some((last_id, _))) = (more, rows.last()) {
        let link = Value::String(next_link(call, table, last_id));
        text.push_str(&format!(",\"@odata.nextLink\":{link}"));
    }
    text.push('}');
    let mut response = odata_text(StatusCode::OK, text);
    if let Some(n) = max_page {
        add_applied(&mut response, &format!("odata.maxpagesize={n}"));
    }
    annotations_applied(call, &mut response);
    response
}

/// `{"@odata.context":...,"value":[rows]` (unclosed, for a nextLink to follow).
pub fn collection_text(call: &Call, table: &Table, view: &View, rows: &[(String, Row)]) -> String {
    let values: Vec<String> = rows
        .iter()
        .map(|(id, row)| view.render(table, id, row).to_string())
        .collect();
    let context = Value::String(format!("{}/$metadata#{}", call.api(), table.set));
    format!(
        "{{\"@odata.context\":{context},\"value\":[{}]",
        values.join(",")
    )
}

/// Appends one preference to `Preference-Applied`.
fn add_applied(response: &mut Response<SimBody>, preference: &str) {
    let value = match response
        .headers()
        .get("preference-applied")
        .and_then(|v| v.to_str().ok())
    {
        Some(before) => format!("{before}, {preference}"),
        None => preference.to_string(),
    };
    set_header(response, "preference-applied", &value);
}

pub fn annotations_applied(call: &Call, response: &mut Response<SimBody>) {
    if let Some(applied) = &call.annotations.applied {
        add_applied(response, applied);
    }
}

/// The absolute URL of the page after the row `last_id`, with the request's other options.
fn next_link(call: &Call, table: &Table, last_id: &str) -> String {
    let page = call.query.skip.as_ref().map_or(1, |c| c.page) + 1;
    let cookie = Cookie {
        page,
        key: table.key.to_string(),
        last_id: last_id.to_string(),
    };
    let next = query::next_query(&call.query.carried, &cookie);
    format!("{}/{}?{next}", call.api(), table.set)
}

/// The annotations collection: stored rows, then synthetic ones, streamed. Query options and
/// paging are ignored for it.
fn stream_annotations(call: &Call, store: &Store, table: &Table) -> Response<SimBody> {
    let stored: Vec<String> = store
        .all(table.set)
        .iter()
        .map(|(id, row)| row.to_json(table, id, None).to_string())
        .collect();
    let context = format!("{}/$metadata#{}", call.api(), table.set);
    let chunks = stream::Chunks::new(&context, stored, call.shared.large_response_bytes);
    let mut response = Response::new(stream::Stream(chunks).boxed());
    set_header(&mut response, "content-type", ODATA_JSON);
    response
}

pub fn retrieve(call: &Call, store: &Store, table: &'static Table, key: &Key) -> Response<SimBody> {
    let select = match call.select(table) {
        Ok(select) => select,
        Err(fault) => return fault.into(),
    };
    let id = match resolve(store, table, key) {
        Ok(Some(id)) => id,
        Ok(None) => return not_found(table, key),
        Err(fault) => return fault.into(),
    };
    match store.get(table.set, &id) {
        Some(row) => entity(call, store, table, &id, row, select, StatusCode::OK),
        None => not_found(table, key),
    }
}

pub fn create(call: &Call, store: &mut Store, table: &'static Table) -> Response<SimBody> {
    let payload = match payload::parse(table, call.body) {
        Ok(payload) => payload,
        Err(e) => return dataverse_error(StatusCode::BAD_REQUEST, e.code, &e.message),
    };
    let id = payload
        .id
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if store.get(table.set, &id).is_some() {
        return duplicate();
    }
    let mut fields = payload.fields;
    if let Some((user, app)) = &call.impersonation {
        fields.insert("_createdby_value".into(), serde_json::json!(user));
        fields.insert("_createdonbehalfby_value".into(), serde_json::json!(app));
    }
    store.put(table.set, &id, fields);
    written(call, store, table, &id, StatusCode::CREATED)
}

/// PATCH: update, or create when absent (unless `If-Match: *`); `If-None-Match: *` is
/// create-only; `If-Match: W/"n"` must equal the row's ETag.
pub fn upsert(
    call: &Call,
    store: &mut Store,
    table: &'static Table,
    key: &Key,
) -> Response<SimBody> {
    let mut payload = match payload::parse(table, call.body) {
        Ok(payload) => payload,
        Err(e) => return dataverse_error(StatusCode::BAD_REQUEST, e.code, &e.message),
    };
    let existing = match resolve(store, table, key) {
        Ok(existing) => existing,
        Err(fault) => return fault.into(),
    };
    let if_match = call.header("if-match");
    if let Some(id) = existing {
        if call.header("if-none-match") == Some("*") {
            return duplicate();
        }
        let etag = store.get(table.set, &id).map(etag);
        if if_match.is_some_and(|m| m != "*" && Some(m) != etag.as_deref()) {
            let message = "The version of the existing record doesn't match the RowVersion property provided.";
            return dataverse_error(StatusCode::PRECONDITION_FAILED, "0x80060882", message);
        }
        store.merge(table.set, &id, payload.fields);
        return written(call, store, table, &id, StatusCode::OK);
    }
    if if_match.is_some() {
        return not_found(table, key);
    }
    let id = match key {
        Key::Id(id) => id.clone(),
        Key::Columns(pairs) => {
            for (column, value) in pairs {
                payload
                    .fields
                    .insert(column.clone(), Value::String(value.clone()));
            }
            payload
                .id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
        }
    };
    store.put(table.set, &id, payload.fields);
    written(call, store, table, &id, StatusCode::CREATED)
}

pub fn delete(store: &mut Store, table: &Table, key: &Key) -> Response<SimBody> {
    match resolve(store, table, key) {
        Ok(Some(id)) if store.delete(table.set, &id) => no_content(),
        Ok(_) => not_found(table, key),
        Err(fault) => fault.into(),
    }
}

/// The id a key addresses, `None` when no row matches, or a 400 for a column the table lacks.
pub fn resolve(store: &Store, table: &Table, key: &Key) -> Result<Option<String>, Fault> {
    match key {
        Key::Id(id) => Ok(store.get(table.set, id).map(|_| id.clone())),
        Key::Columns(pairs) => match pairs.iter().find(|(c, _)| !table.has_column(c)) {
            Some((column, _)) => Err(Fault::bad_request(format!(
                "Invalid key: '{column}' is not an attribute of entity '{}'.",
                table.logical
            ))),
            None => Ok(store.find(table, pairs)),
        },
    }
}

pub fn etag(row: &Row) -> String {
    format!("W/\"{}\"", row.version)
}

/// 204 with `OData-EntityId`, or the row with `status` under `Prefer: return=representation`.
fn written(
    call: &Call,
    store: &Store,
    table: &'static Table,
    id: &str,
    status: StatusCode,
) -> Response<SimBody> {
    let entity_id = format!("{}/{}({id})", call.api(), table.set);
    let mut response = match store.get(table.set, id) {
        Some(row) if prefer::wants_representation(call.prefer()) => {
            let select = match call.select(table) {
                Ok(select) => select,
                Err(fault) => return fault.into(),
            };
            let mut response = entity(call, store, table, id, row, select, status);
            add_applied(&mut response, "return=representation");
            response
        }
        _ => no_content(),
    };
    set_header(&mut response, "odata-entityid", &entity_id);
    response
}

/// A row as a single-entity response (`@odata.context` `<set>/$entity`, `ETag` header), with
/// the request's `$expand` and annotations.
pub fn entity(
    call: &Call,
    store: &Store,
    table: &'static Table,
    id: &str,
    row: &Row,
    select: Option<&[String]>,
    status: StatusCode,
) -> Response<SimBody> {
    let expand = match expand::parse(table, call.query.expand.as_deref()) {
        Ok(expand) => expand,
        Err(fault) => return fault.into(),
    };
    let view = View {
        store,
        select,
        expand: &expand,
        annotations: &call.annotations,
    };
    let mut json = view.render(table, id, row);
    json["@odata.context"] =
        Value::String(format!("{}/$metadata#{}/$entity", call.api(), table.set));
    let mut response = odata_json(status, &json);
    set_header(&mut response, "etag", &etag(row));
    annotations_applied(call, &mut response);
    response
}

pub fn not_found(table: &Table, key: &Key) -> Response<SimBody> {
    missing(table, key).into()
}

/// The 404 for a key that addresses no row.
pub fn missing(table: &Table, key: &Key) -> Fault {
    let message = match key {
        Key::Id(id) => format!("{} With Id = {id} Does Not Exist", table.logical),
        Key::Columns(_) => format!(
            "A record with the specified key values does not exist in {} entity",
            table.logical
        ),
    };
    Fault {
        status: StatusCode::NOT_FOUND,
        code: "0x80040217",
        message,
    }
}

pub fn duplicate() -> Response<SimBody> {
    conflict().into()
}

/// The 412 for a create whose key is taken.
pub fn conflict() -> Fault {
    Fault {
        status: StatusCode::PRECONDITION_FAILED,
        code: "0x80040237",
        message: "A record with matching key values already exists.".into(),
    }
}
