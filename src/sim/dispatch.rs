//! One authenticated Dataverse request, served in process: parse the target (path and query)
//! → check the security role's privilege → serve.
//!
//! `dataverse` calls [`dispatch`] for each request once it is authenticated and not throttled;
//! `batch` calls it for each part of a `$batch`, with the batch's caller and, inside a change
//! set, the same locked store for every part. Invariant: synchronous, so the store lock passed in
//! is never held across an await; `EntityDefinitions` needs no privilege (metadata is not data).

use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};

use super::data::Store;
use super::path::{self, Bulk, Target};
use super::prefer::Annotations;
use super::records::{self, Call};
use super::response::{
    Fault, SimBody, bad_request, method_not_allowed, odata_json, segment_not_found, with_body,
};
use super::schema::{TABLES, Table, table};
use super::state::Shared;
use super::{actions, definitions, property, query, seed};

pub const API: &str = "/api/data/v9.2/";
const METADATA: &str = include_str!("metadata.xml");
const VERSION: &str = "9.2.25011.00000";

/// Who an authenticated request acts as.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// The application user acting on behalf of `user_id` (impersonation), if any.
    pub on_behalf_of: Option<String>,
}

/// A request as the dispatcher sees it, whether it came on the wire or inside a `$batch`.
pub struct Inner<'a> {
    pub method: &'a Method,
    /// Path and query as sent, e.g. `/api/data/v9.2/contacts?$top=1`.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What a request does to a table, for the privilege check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Create,
    Write,
    Delete,
}

impl Access {
    fn of(method: &Method) -> Self {
        match *method {
            Method::POST => Access::Create,
            Method::PATCH | Method::PUT => Access::Write,
            Method::DELETE => Access::Delete,
            _ => Access::Read,
        }
    }
}

pub fn dispatch(
    shared: &Shared,
    caller: &Caller,
    store: &mut Store,
    request: &Inner,
) -> Response<SimBody> {
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.target, None),
    };
    let Some(rest) = path.strip_prefix(API) else {
        return segment_not_found(path.trim_start_matches('/'));
    };
    let target = match path::parse(rest) {
        Ok(target) => target,
        Err(path::BadKey(message)) => return bad_request(&message),
    };
    let query = match query::parse(query) {
        Ok(query) => query,
        Err(e) => return bad_request(&e.0),
    };
    let prefer = request
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let call = Call {
        shared,
        headers: request.headers,
        query,
        body: request.body,
        annotations: Annotations::from_prefer(prefer),
        impersonation: caller
            .on_behalf_of
            .as_ref()
            .map(|app| (caller.user_id.clone(), app.clone())),
    };
    let method = request.method;
    let get = *method == Method::GET;
    match target {
        Target::ServiceDocument if get => service_document(shared),
        Target::Metadata if get => with_body(StatusCode::OK, "application/xml", METADATA),
        Target::WhoAmI if get => who_am_i(shared, caller),
        Target::RetrieveVersion if get => retrieve_version(shared),
        Target::Definitions(path) if get => definitions::serve(&call, &path),
        Target::Batch if *method == Method::POST => {
            bad_request("A $batch request cannot contain another $batch request.")
        }
        Target::ServiceDocument
        | Target::Metadata
        | Target::WhoAmI
        | Target::RetrieveVersion
        | Target::Definitions(_)
        | Target::Batch => method_not_allowed(method),
        Target::NotFound(segment) => segment_not_found(&segment),
        target => match privileges(shared, caller, &target, method) {
            Err(fault) => fault.into(),
            Ok(()) => serve_table(&call, store, target, method),
        },
    }
}

/// Checks every table the target reads or writes (a navigation touches two).
fn privileges(
    shared: &Shared,
    caller: &Caller,
    target: &Target,
    method: &Method,
) -> Result<(), Fault> {
    let access = Access::of(method);
    match target {
        Target::Property { table: t, .. } if access == Access::Delete => {
            privileged(shared, caller, t, Access::Write)
        }
        Target::Collection(t) | Target::Record(t, _) | Target::Property { table: t, .. } => {
            privileged(shared, caller, t, access)
        }
        Target::Navigation(t, _, lookup) => {
            privileged(shared, caller, t, Access::Read)?;
            match table(lookup.target_set) {
                Some(target) => privileged(shared, caller, target, Access::Read),
                None => Ok(()),
            }
        }
        Target::Action(t, Bulk::Create) => privileged(shared, caller, t, Access::Create),
        Target::Action(t, _) => privileged(shared, caller, t, Access::Write),
        _ => Ok(()),
    }
}

/// Serves a privilege-checked table target.
fn serve_table(
    call: &Call,
    store: &mut Store,
    target: Target,
    method: &Method,
) -> Response<SimBody> {
    match (target, method.clone()) {
        (Target::Collection(t), Method::GET) => records::list(call, store, t),
        (Target::Collection(t), Method::POST) => records::create(call, store, t),
        (Target::Record(t, key), Method::GET) => records::retrieve(call, store, t, &key),
        (Target::Record(t, key), Method::PATCH) => records::upsert(call, store, t, &key),
        (Target::Record(t, key), Method::DELETE) => records::delete(store, t, &key),
        (
            Target::Property {
                table,
                key,
                column,
                raw,
            },
            Method::GET,
        ) => property::read(call, store, table, &key, column, raw),
        (
            Target::Property {
                table,
                key,
                column,
                raw: false,
            },
            m @ (Method::PUT | Method::DELETE),
        ) => property::write(call, store, table, &key, column, m == Method::DELETE),
        (Target::Navigation(t, key, lookup), Method::GET) => {
            property::navigate(call, store, t, &key, lookup)
        }
        (Target::Action(t, bulk), Method::POST) => actions::run(call, store, t, bulk),
        (_, method) => method_not_allowed(&method),
    }
}

/// The simulated security role grants every privilege on `readable_tables` and none elsewhere.
pub fn privileged(
    shared: &Shared,
    caller: &Caller,
    table: &Table,
    access: Access,
) -> Result<(), Fault> {
    if shared.readable.contains(table.set) {
        return Ok(());
    }
    let (verb, index, operation) = match access {
        Access::Create => ("Create", 1, "Create"),
        Access::Write => ("Write", 2, "Update"),
        Access::Delete => ("Delete", 3, "Delete"),
        Access::Read => ("Read", 0, "RetrieveMultiple"),
    };
    let privilege_id = format!(
        "{:08x}-0000-4000-9000-{index:012x}",
        0x9e00_0000 + table.otc
    );
    let message = format!(
        "Principal user (Id={}, type=8, roleCount=1, privilegeCount=42) is missing prv{verb}{} privilege \
         (Id={privilege_id}) on OTC={} for entity '{}'. context: Method={operation}; BusinessUnitId={}",
        caller.user_id,
        table.schema,
        table.otc,
        table.logical,
        seed::BUSINESS_UNIT_ID,
    );
    Err(Fault {
        status: StatusCode::FORBIDDEN,
        code: "0x80040220",
        message,
    })
}

/// `{base}/api/data/v9.2/$metadata{fragment}`.
pub fn api_context(shared: &Shared, fragment: &str) -> String {
    format!("{}{API}$metadata{fragment}", shared.base_url)
}

fn service_document(shared: &Shared) -> Response<SimBody> {
    let sets: Vec<Value> = TABLES
        .iter()
        .map(|t| json!({"name": t.set, "kind": "EntitySet", "url": t.set}))
        .collect();
    odata_json(
        StatusCode::OK,
        &json!({"@odata.context": api_context(shared, ""), "value": sets}),
    )
}

fn who_am_i(shared: &Shared, caller: &Caller) -> Response<SimBody> {
    let body = json!({
        "@odata.context": api_context(shared, "#Microsoft.Dynamics.CRM.WhoAmIResponse"),
        "BusinessUnitId": seed::BUSINESS_UNIT_ID,
        "UserId": caller.user_id,
        "OrganizationId": seed::ORGANIZATION_ID,
    });
    odata_json(StatusCode::OK, &body)
}

fn retrieve_version(shared: &Shared) -> Response<SimBody> {
    let body = json!({
        "@odata.context": api_context(shared, "#Microsoft.Dynamics.CRM.RetrieveVersionResponse"),
        "Version": VERSION,
    });
    odata_json(StatusCode::OK, &body)
}
