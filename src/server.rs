//! The agents' listener: accept loop, HTTP/1.1 and HTTP/2, graceful shutdown.
//!
//! `serve(listener, gateway, shutdown, grace)`: the caller binds (port 0 in tests) and owns
//! shutdown. tower-http layers sit only here, at the edge: tracing and catch-panic.

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
use tower_http::trace::TraceLayer;

use crate::body::{self, BoxBody};
use crate::error::error_body;
use crate::gateway::Gateway;

/// Serves until `shutdown` completes, then lets open requests finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(64 * 1024)
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
            .layer(TraceLayer::new_for_http())
            .service_fn(move |req: Request<Incoming>| {
                let gateway = Arc::clone(&gateway);
                async move { Ok::<_, Infallible>(gateway.handle(req).await) }
            });
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
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
