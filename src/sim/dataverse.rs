//! The simulated Dataverse Web API under `/api/`.
//!
//! Phases, in order: read the body → record the request → count it in flight → optional delay
//! → authenticate (bearer token issued by this simulator and unexpired on the injected clock)
//! → throttle (`throttle_next`) → parse path and query → check the security role's privilege
//! → serve. Recording comes first so tests see even rejected requests; throttling comes after
//! authentication, as in Dataverse, where limits are per user. Every response carries
//! `OData-Version: 4.0` and a `REQ_ID`.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::path::{self, Target};
use super::records::{self, Call};
use super::response::{
    Fault, SimBody, bad_request, dataverse_error, method_not_allowed, odata_json,
    segment_not_found, set_header, with_body,
};
use super::schema::{TABLES, Table};
use super::state::{Shared, lock};
use super::{RecordedRequest, seed};

const API: &str = "/api/data/v9.2/";
const METADATA: &str = include_str!("metadata.xml");
const VERSION: &str = "9.2.25011.00000";
/// Bytes of a request body kept in [`RecordedRequest`].
const RECORDED_BODY: usize = 1024 * 1024;

/// Who an authenticated request acts as.
struct Caller {
    user_id: String,
}

pub async fn handle(shared: Arc<Shared>, parts: Parts, body: Option<Bytes>) -> Response<SimBody> {
    let recorded = body
        .as_ref()
        .map_or_else(Bytes::new, |b| b.slice(..b.len().min(RECORDED_BODY)));
    lock(&shared.requests).push(RecordedRequest {
        method: parts.method.clone(),
        uri: parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        ),
        headers: parts.headers.clone(),
        body: recorded,
    });
    let _in_flight = shared.enter();
    let delay = *lock(&shared.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = match body {
        Some(body) => respond(&shared, &parts, &body),
        None => {
            let message = "The request body is too large or could not be read.";
            dataverse_error(StatusCode::PAYLOAD_TOO_LARGE, "0x80040333", message)
        }
    };
    set_header(&mut response, "odata-version", "4.0");
    set_header(&mut response, "req_id", &uuid::Uuid::new_v4().to_string());
    response
}

fn respond(shared: &Shared, parts: &Parts, body: &[u8]) -> Response<SimBody> {
    let caller = match authenticate(shared, parts) {
        Ok(caller) => caller,
        Err(message) => return unauthorized(shared, message),
    };
    if let Some(retry_after) = shared.take_throttle() {
        return throttled(retry_after);
    }
    let Some(rest) = parts.uri.path().strip_prefix(API) else {
        return segment_not_found(parts.uri.path().trim_start_matches('/'));
    };
    let target = match path::parse(rest) {
        Ok(target) => target,
        Err(path::BadKey(message)) => return bad_request(&message),
    };
    let query = match super::query::parse(parts.uri.query()) {
        Ok(query) => query,
        Err(e) => return bad_request(&e.0),
    };
    let get = parts.method == Method::GET;
    let call = Call {
        shared,
        headers: &parts.headers,
        query,
        body,
    };
    match target {
        Target::ServiceDocument if get => service_document(shared),
        Target::Metadata if get => with_body(StatusCode::OK, "application/xml", METADATA),
        Target::WhoAmI if get => who_am_i(shared, &caller),
        Target::RetrieveVersion if get => retrieve_version(shared),
        Target::ServiceDocument | Target::Metadata | Target::WhoAmI | Target::RetrieveVersion => {
            method_not_allowed(&parts.method)
        }
        Target::NotFound(segment) => segment_not_found(&segment),
        Target::Collection(table) => match privileged(shared, &caller, table, &parts.method) {
            Err(fault) => fault.into(),
            Ok(()) if get => records::list(&call, table),
            Ok(()) if parts.method == Method::POST => records::create(&call, table),
            Ok(()) => method_not_allowed(&parts.method),
        },
        Target::Record(table, key) => match privileged(shared, &caller, table, &parts.method) {
            Err(fault) => fault.into(),
            Ok(()) if get => records::retrieve(&call, table, &key),
            Ok(()) if parts.method == Method::PATCH => records::upsert(&call, table, &key),
            Ok(()) if parts.method == Method::DELETE => records::delete(&call, table, &key),
            Ok(()) => method_not_allowed(&parts.method),
        },
    }
}

/// The caller behind the bearer token, or why there is none.
fn authenticate(shared: &Shared, parts: &Parts) -> Result<Caller, &'static str> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = header
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    let Some((_, token)) = token else {
        return Err("The request has no bearer token in its Authorization header.");
    };
    match shared.valid_token(token.trim()) {
        Some(issued) => Ok(Caller {
            user_id: seed::app_user_id(issued.app),
        }),
        None => Err("The access token is expired or was not issued for this environment."),
    }
}

fn unauthorized(shared: &Shared, message: &str) -> Response<SimBody> {
    let mut response = dataverse_error(StatusCode::UNAUTHORIZED, "0x80070005", message);
    let base = &shared.base_url;
    let challenge = format!(
        "Bearer authorization_uri={base}/{}/oauth2/authorize, resource_id={base}/",
        shared.home_tenant()
    );
    set_header(&mut response, "www-authenticate", &challenge);
    response
}

fn throttled(retry_after: u64) -> Response<SimBody> {
    let message = "Number of requests exceeded the limit of 6000 over time window of 300 seconds.";
    let mut response = dataverse_error(StatusCode::TOO_MANY_REQUESTS, "0x80072322", message);
    set_header(&mut response, "retry-after", &retry_after.to_string());
    response
}

/// The simulated security role grants every privilege on `readable_tables` and none elsewhere.
fn privileged(
    shared: &Shared,
    caller: &Caller,
    table: &Table,
    method: &Method,
) -> Result<(), Fault> {
    if shared.readable.contains(table.set) {
        return Ok(());
    }
    let (verb, index, operation) = match *method {
        Method::POST => ("Create", 1, "Create"),
        Method::PATCH | Method::PUT => ("Write", 2, "Update"),
        Method::DELETE => ("Delete", 3, "Delete"),
        _ => ("Read", 0, "RetrieveMultiple"),
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

fn api_context(shared: &Shared, fragment: &str) -> String {
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
