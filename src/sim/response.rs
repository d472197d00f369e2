//! Response builders shared by the Entra and Dataverse sides: the body type, JSON responses,
//! and Dataverse's error shape `{"error":{"code":"0x...","message":"..."}}`.
//!
//! Invariant: every Dataverse JSON response (success or error) carries
//! `Content-Type: application/json; odata.metadata=minimal`; `OData-Version` is added by the
//! Dataverse handler for all its responses.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Body;
use serde_json::{Value, json};

/// The body of every simulator response: a full buffer or the annotations stream.
pub type SimBody = BoxBody<Bytes, Infallible>;

pub const ODATA_JSON: &str = "application/json; odata.metadata=minimal";

pub fn full(bytes: impl Into<Bytes>) -> SimBody {
    Full::new(bytes.into()).boxed()
}

/// The whole of a body whose frames are all ready at once, as every simulator body is (a buffer,
/// or the annotations stream, which generates each chunk when polled). Reading stops at a frame
/// that is not ready, so it never blocks.
pub fn body_now(mut body: SimBody) -> Bytes {
    let mut context = Context::from_waker(Waker::noop());
    let mut out = BytesMut::new();
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut context) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out.freeze()
}

pub fn empty() -> SimBody {
    full(Bytes::new())
}

/// A response with a fixed body and content type.
pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<SimBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A Dataverse JSON response.
pub fn odata_json(status: StatusCode, value: &Value) -> Response<SimBody> {
    odata_text(status, value.to_string())
}

/// A Dataverse JSON response from already-serialized JSON text.
pub fn odata_text(status: StatusCode, text: String) -> Response<SimBody> {
    with_body(status, ODATA_JSON, text)
}

pub fn no_content() -> Response<SimBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A Dataverse error. Codes used by the simulator:
/// `0x80040217` not found, `0x80040220` missing privilege, `0x80040237` duplicate key,
/// `0x80040333` malformed payload, `0x80060888` bad query / unknown property,
/// `0x8006088a` unknown segment, `0x80072322` throttled, `0x80070005` not authenticated
/// (the real service sends an empty 401 body; the simulator adds this for readability).
pub fn dataverse_error(status: StatusCode, code: &str, message: &str) -> Response<SimBody> {
    odata_json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// A Dataverse error not yet turned into a response (small enough to return in a `Result`).
#[derive(Debug, PartialEq, Eq)]
pub struct Fault {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Fault {
    pub fn bad_request(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "0x80060888",
            message,
        }
    }
}

impl From<Fault> for Response<SimBody> {
    fn from(fault: Fault) -> Self {
        dataverse_error(fault.status, fault.code, &fault.message)
    }
}

pub fn segment_not_found(segment: &str) -> Response<SimBody> {
    let message = format!("Resource not found for the segment '{segment}'.");
    dataverse_error(StatusCode::NOT_FOUND, "0x8006088a", &message)
}

pub fn bad_request(message: &str) -> Response<SimBody> {
    dataverse_error(StatusCode::BAD_REQUEST, "0x80060888", message)
}

pub fn method_not_allowed(method: &http::Method) -> Response<SimBody> {
    let message = format!("The requested resource does not support http method '{method}'.");
    dataverse_error(StatusCode::METHOD_NOT_ALLOWED, "0x80060888", &message)
}

/// Sets a header from text that may contain request-derived bytes; skips invalid values
/// instead of panicking.
pub fn set_header(response: &mut Response<SimBody>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
