//! The agents' listener: accept loop, HTTP/1.1 and HTTP/2, graceful shutdown.
//!
//! `serve(listener, gateway, shutdown, grace)`: the caller binds (port 0 in tests) and owns
//! shutdown; [`serve_tls`] does the same over TLS (the handshake runs in the connection's task,
//! bounded by [`TLS_HANDSHAKE_TIMEOUT`], so a slow client never stalls the accept loop).
//! tower-http's catch-panic layer sits only here, at the edge. There is no per-request tracing
//! layer: the audit log and the `debug` access line (`observe.rs`) are the per-request record,
//! and a span plus a wrapped body per request cost more than the line does. Header limits: at
//! most [`MAX_HEADERS`] headers and 64 KiB of request head (HTTP/1.1: 431 beyond), 64 KiB of
//! header list (HTTP/2).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::body::{self, BoxBody};
use crate::error::error_body;
use crate::gateway::Gateway;
use crate::tls::SharedTls;

/// Most request headers accepted on HTTP/1.1.
pub const MAX_HEADERS: usize = 100;
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().max_header_list_size(64 * 1024);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let gateway = Arc::clone(&gateway);
        let service = ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(panic_response))
            .service_fn(move |req: Request<Incoming>| {
                let gateway = Arc::clone(&gateway);
                async move { Ok::<_, Infallible>(gateway.handle(req).await) }
            });
        let service = TowerToHyperService::new(service);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.load_full()));
        tokio::spawn(async move {
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

/// A panic becomes a 500 in Dataverse's shape; the panic payload is never shown.
fn panic_response(_payload: Box<dyn std::any::Any + Send>) -> Response<BoxBody> {
    tracing::error!("request handler panicked");
    let mut r = Response::new(body::full(error_body(
        "GatewayInternalError",
        "the gateway failed internally; see its log",
    )));
    *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
