//! The agents' listener: accept loop, HTTP/1.1 and HTTP/2, graceful shutdown.
//!
//! `serve(listener, gateway, shutdown, grace)`: the caller binds (port 0 in tests) and owns
//! shutdown; [`serve_tls`] does the same over TLS (the handshake runs in the connection's task,
//! bounded by [`TLS_HANDSHAKE_TIMEOUT`], so a slow client never stalls the accept loop).
//! A panic in a request's handler is caught only here, at the edge ([`service`]: the handler's
//! future under `catch_unwind`, answered 500; the response body is the pipeline's own, not
//! boxed once more). There is no per-request tracing
//! layer: the audit log and the `debug` access line (`observe.rs`) are the per-request record,
//! and a span plus a wrapped body per request cost more than the line does. Header limits: at
//! most [`MAX_HEADERS`] headers and 64 KiB of request head (HTTP/1.1: 431 beyond, audited and
//! counted), 64 KiB of header list (HTTP/2).
//!
//! Connections are a bounded resource. Invariants:
//! - at most `limits.max_connections` agent connections are open (default: from the process's
//!   file limit, leaving room for upstream, admin and files); one over the cap is accepted and
//!   at once answered 503 (plain HTTP, then closed without a reset: [`linger`]) or closed
//!   (TLS), never left waiting. Reaching the cap
//!   and leaving it (a tenth below it) are logged once each, and `/readyz` is 503 meanwhile
//!   ([`Listener`](crate::proxy::gateway::Listener));
//! - a connection with no request in progress is closed after `timeouts.request_head`,
//!   counted from accept (not from its first byte) and from the end of its last response (the
//!   connection's timer waits in a task of its own and, when it fires, aborts the connection's
//!   task: it is not polled at each of the connection's wake-ups);
//! - a connection whose agent leaves a response piece unread for `timeouts.response_body_idle`
//!   (a slow or stopped reader) is closed, so it cannot hold its tenant's slot and upstream
//!   connection for as long as it likes;
//! - accept errors (EMFILE...) back off exponentially up to [`ACCEPT_BACKOFF_MAX`] and are
//!   logged once when they start and once when accepting works again ([`AcceptBackoff`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod connections;

pub use connections::AcceptBackoff;

use crate::proxy::activity::{Activity, Closed};

use crate::error::{GatewayError, error_body};
use crate::identity::tls::SharedTls;
use crate::proxy::body::{self, BoxBody};
use crate::proxy::gateway::Gateway;
use crate::proxy::pipeline;

/// Most request headers accepted on HTTP/1.1.
pub const MAX_HEADERS: usize = 100;
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between two accept attempts while accepting fails.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves until `shutdown` completes, then lets open requests finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    serve_tls(listener, gateway, shutdown, grace, None).await;
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_tls(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    tls: Option<SharedTls>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(64 * 1024)
        .max_headers(MAX_HEADERS)
        // Each response written from one buffer (head, chunk sizes and body copied together)
        // rather than a queue of slices handed to `writev`: for the usual page of a few KiB the
        // copy costs less than the queue (callgrind, BENCHMARKS.md), and large bodies stream in
        // frames as before (the buffer is flushed at `max_buf_size`).
        .writev(false)
        // No per-request head timer of hyper's (a timer armed and cancelled for every request):
        // the connection's own timer (`Activity::closing`) already closes a connection that has
        // not started a request within `timeouts.request_head` of accepting it or of ending its
        // last one, which bounds a head that trickles in as well.
        .header_read_timeout(None);
    builder.http2().max_header_list_size(64 * 1024);
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::new("agents");
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.succeeded(Some(&gateway.listener));
                    a
                }
                Err(e) => {
                    backoff.failed(&e, Some(&gateway.listener)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(counted) = connections::admit(&gateway) else {
            gateway.metrics.connection_closed("over_capacity");
            refuse(stream, tls.is_some());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let service = service(&gateway, &activity);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.load_full()));
        let gateway = Arc::clone(&gateway);
        let timeouts = gateway.snapshot().config.timeouts;
        let (idle, unread) = (timeouts.request_head, timeouts.response_body_idle);
        // The connection is served in a task of its own and its timer waits in another. Beside
        // the connection in one task, the timer would be polled again (and its waker stored
        // again) at every wake-up of the connection, several per request, when it only matters
        // at its deadline.
        let served = {
            let gateway = Arc::clone(&gateway);
            tokio::spawn(async move {
                let _counted = counted;
                let served = async {
                    match acceptor {
                        None => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            Some(watcher.watch(conn.into_owned()).await)
                        }
                        Some(acceptor) => {
                            let stream = handshake(acceptor, stream, peer).await?;
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            Some(watcher.watch(conn.into_owned()).await)
                        }
                    }
                };
                if let Some(Err(e)) = served.await {
                    connection_error(&gateway, peer, &*e);
                }
            })
        };
        tokio::spawn(async move {
            let connection = served.abort_handle();
            tokio::select! {
                _ = served => {}
                closed = activity.closing(idle, unread) => {
                    // Dropped where it is: the connection closes as if it had ended here.
                    connection.abort();
                    let reason = match closed {
                        Closed::Idle => "head_timeout",
                        Closed::Unread => "response_unread",
                    };
                    gateway.metrics.connection_closed(reason);
                    tracing::debug!(%peer, reason, "connection closed by its timer");
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

/// The connection's service: each request marks the connection busy until its response ends;
/// a panic while handling it becomes a 500 ([`panic_response`]).
fn service(
    gateway: &Arc<Gateway>,
    activity: &Arc<Activity>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<BoxBody>,
    Error = Infallible,
    Future: Send + 'static,
> + Send
+ 'static {
    let (gateway, activity) = (Arc::clone(gateway), Arc::clone(activity));
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let gateway = Arc::clone(&gateway);
        let guard = activity.begin();
        caught(async move {
            if crate::proxy::mcp::endpoint(req.uri().path()).is_some() {
                // Like every answer, the MCP endpoint's carries the agent's request id or a new
                // one (the Web API requests a tool call makes are audited with their own).
                let id = crate::policy::headers::agent_request_id(req.headers())
                    .unwrap_or_else(pipeline::new_request_id);
                let mut r = crate::proxy::mcp::serve(gateway, req).await;
                r.headers_mut().entry(&pipeline::X_REQUEST_ID).or_insert(id);
                return r;
            }
            gateway.handle_on(req, Some(guard)).await
        })
    })
}

/// `handling`'s response, or a 500 when it panics.
fn caught(
    handling: impl Future<Output = Response<BoxBody>>,
) -> impl Future<Output = Result<Response<BoxBody>, Infallible>> {
    std::panic::AssertUnwindSafe(handling)
        .catch_unwind()
        .map(|handled| Ok(handled.unwrap_or_else(panic_response)))
}

async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// A connection over the cap: a plain-HTTP client gets a 503 it can read (written without
/// waiting: what does not fit in the socket buffer is dropped), a TLS client a closed socket.
fn refuse(stream: TcpStream, tls: bool) {
    if tls {
        return;
    }
    let body = error_body(
        "GatewayOverloaded",
        "the gateway is at its connection limit; retry shortly",
    );
    let id = crate::proxy::pipeline::new_request_id();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\nodata-version: 4.0\r\nx-request-id: {}\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        id.to_str().unwrap_or("unknown"),
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(&body);
    if stream.try_write(&out).is_err() {
        return;
    }
    linger(stream);
}

/// Refused connections lingering at once, and each one's bounds.
static LINGERING: AtomicUsize = AtomicUsize::new(0);
const MAX_LINGERING: usize = 256;
const LINGER_FOR: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Closes a refused connection without a reset. Closed with the agent's request unread, the
/// socket would answer it with a reset, which can destroy the 503 before the agent reads it;
/// so the gateway's side is shut (the 503, then the end of the stream) and what the agent
/// still sends is read and dropped, for at most [`LINGER_FOR`] and [`LINGER_BYTES`], and for at
/// most [`MAX_LINGERING`] connections at once (beyond that, closed at once as before).
fn linger(stream: TcpStream) {
    if LINGERING.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING {
        LINGERING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    tokio::spawn(async move {
        struct Release;
        impl Drop for Release {
            fn drop(&mut self) {
                LINGERING.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _release = Release;
        let mut stream = stream;
        if stream.shutdown().await.is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut read = 0;
        let drain = async {
            while read < LINGER_BYTES {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_FOR, drain).await;
    });
}

/// A connection ended with an error: a request head over the limits was answered 431 by the
/// HTTP layer; it is audited and counted like every other answer.
fn connection_error(
    gateway: &Arc<Gateway>,
    peer: std::net::SocketAddr,
    e: &(dyn std::error::Error + 'static),
) {
    let hyper_error = e.downcast_ref::<hyper::Error>();
    if hyper_error.is_some_and(hyper::Error::is_timeout) {
        // A timer of the HTTP layer fired (none is armed for HTTP/1.1 heads: see `serve_tls`).
        gateway.metrics.connection_closed("head_timeout");
        return;
    }
    let too_large = hyper_error.is_some_and(hyper::Error::is_parse_too_large);
    if too_large {
        gateway.metrics.connection_closed("head_too_large");
        let error = GatewayError::HeadersTooLarge(format!(
            "the request head is over 64 KiB or {MAX_HEADERS} headers"
        ));
        crate::proxy::pipeline::observe::refused_head(gateway, &error);
        return;
    }
    tracing::debug!(%peer, error = %e, "connection ended with an error");
}

/// A panic becomes a 500 in Dataverse's shape; the panic payload is never shown.
fn panic_response(_payload: Box<dyn std::any::Any + Send>) -> Response<BoxBody> {
    tracing::error!("request handler panicked");
    let mut r = Response::new(body::full(error_body(
        "GatewayInternalError",
        "the gateway failed internally; see its log",
    )));
    *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("odata-version", http::HeaderValue::from_static("4.0"));
    h.insert(&pipeline::X_REQUEST_ID, pipeline::new_request_id());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_without_the_payload() {
        let handling = async {
            if std::hint::black_box(true) {
                panic!("secret detail");
            }
            Response::new(body::empty())
        };
        let Ok(r) = caught(handling).await;
        assert_eq!(r.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.headers()["odata-version"], "4.0");
        assert_eq!(r.headers()["x-request-id"].len(), 36);
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("GatewayInternalError"), "{text}");
        assert!(!text.contains("secret detail"), "{text}");
    }

    #[tokio::test]
    async fn a_handler_that_answers_is_passed_through() {
        let Ok(r) = caught(async { Response::new(body::full("ok")) }).await;
        assert_eq!(r.status(), http::StatusCode::OK);
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"ok");
    }
}
