//! The simulated Dataverse Web API under `/api/`: the wire-facing shell around [`dispatch`].
//!
//! Phases, in order: read the body → record the request → count it in flight → optional delay
//! → wait while a test holds responses → authenticate (bearer token issued by this simulator and unexpired on the injected clock)
//! → throttle (`throttle_next`) → a `POST $batch` goes to `batch`, anything else to
//! [`dispatch`]. Recording comes first so tests see even rejected requests (a `$batch` is one
//! record; its parts are not recorded separately); throttling comes after authentication, as in
//! Dataverse, where limits are per user, and a `$batch` counts once. Every response carries
//! `OData-Version: 4.0` and a `REQ_ID`.
//!
//! [`dispatch`]: super::dispatch::dispatch

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response, StatusCode};

use super::dispatch::{API, Caller, Inner, dispatch};
use super::form::decode;
use super::response::{SimBody, dataverse_error, set_header};
use super::state::{Shared, lock};
use super::{RecordedRequest, batch, seed};

/// Bytes of a request body kept in [`RecordedRequest`].
const RECORDED_BODY: usize = 1024 * 1024;

pub async fn handle(shared: Arc<Shared>, parts: Parts, body: Option<Bytes>) -> Response<SimBody> {
    let recorded = body
        .as_ref()
        .map_or_else(Bytes::new, |b| b.slice(..b.len().min(RECORDED_BODY)));
    shared.record(RecordedRequest {
        method: parts.method.clone(),
        uri: target_of(&parts),
        headers: parts.headers.clone(),
        body: recorded,
    });
    let _in_flight = shared.enter();
    let delay = *lock(&shared.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    shared.gate_open().await;
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

/// Path and query, as received.
fn target_of(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    )
}

fn respond(shared: &Shared, parts: &Parts, body: &[u8]) -> Response<SimBody> {
    let caller = match authenticate(shared, parts) {
        Ok(caller) => caller,
        Err(message) => return unauthorized(shared, message),
    };
    let caller = match super::agents::impersonate(shared, &parts.headers, &caller) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if let Some(retry_after) = shared.take_throttle() {
        return throttled(retry_after);
    }
    let batch_path = parts.uri.path().strip_prefix(API).map(|p| decode(p, false));
    if parts.method == Method::POST && batch_path.as_deref() == Some("$batch") {
        return batch::execute(shared, &caller, &parts.headers, body);
    }
    let target = target_of(parts);
    let request = Inner {
        method: &parts.method,
        target: &target,
        headers: &parts.headers,
        body,
    };
    dispatch(shared, &caller, &mut lock(&shared.store), &request)
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
            on_behalf_of: None,
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
