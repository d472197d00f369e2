//! The load benchmark's floor: a bare HTTP/1.1 pass-through proxy on the gateway's own crates
//! (hyper 1 server and client connections, tokio's current-thread runtime, one thread).
//!
//! Not shipped (an example, built by `benches/load/run.sh` with `cargo build --release
//! --example bare_proxy`). It does the least any reverse proxy does, like the benchmark's nginx:
//! parse the agent's request, send it upstream in origin form with a static `Authorization`
//! header over a kept-alive connection, stream the answer back unchanged. No policy, audit,
//! limits, metrics or rewriting: what the gateway spends above this is its own work.
//!
//! Usage: `bare_proxy LISTEN_ADDR UPSTREAM_ADDR` (both `host:port`); the bearer token is read
//! from the `BARE_PROXY_TOKEN` environment variable (none when unset).
//! Each agent connection gets its own upstream connection, opened on its first request and kept
//! for its life (requests on one HTTP/1.1 connection are sequential, so it is never shared).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Body = BoxBody<Bytes, hyper::Error>;

struct Upstream {
    addr: String,
    host: HeaderValue,
    bearer: Option<HeaderValue>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let bearer = match std::env::var("BARE_PROXY_TOKEN") {
        Ok(t) => Some(HeaderValue::from_str(&format!("Bearer {t}"))?),
        Err(_) => None,
    };
    let upstream = Arc::new(Upstream {
        host: HeaderValue::from_str(&upstream)?,
        addr: upstream,
        bearer,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(listen, upstream))
}

async fn serve(listen: String, upstream: Arc<Upstream>) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(&listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let upstream = Arc::clone(&upstream);
        tokio::spawn(async move {
            let conn: Arc<Mutex<Option<SendRequest<Body>>>> = Arc::default();
            let service = hyper::service::service_fn(move |req| {
                let (upstream, conn) = (Arc::clone(&upstream), Arc::clone(&conn));
                async move { Ok::<_, Infallible>(forward(&upstream, &conn, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    upstream: &Upstream,
    conn: &Mutex<Option<SendRequest<Body>>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = Uri::try_from(target).unwrap_or_else(|_| Uri::from_static("/"));
    parts.headers.insert(HOST, upstream.host.clone());
    if let Some(bearer) = &upstream.bearer {
        parts.headers.insert(AUTHORIZATION, bearer.clone());
    }
    let req = Request::from_parts(parts, body.boxed());
    let mut slot = conn.lock().await;
    if slot.as_ref().is_none_or(|s| s.is_closed()) {
        match connect(&upstream.addr).await {
            Ok(s) => *slot = Some(s),
            Err(_) => return bad_gateway(),
        }
    }
    let Some(sender) = slot.as_mut() else {
        return bad_gateway();
    };
    if sender.ready().await.is_err() {
        *slot = None;
        return bad_gateway();
    }
    match sender.send_request(req).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(_) => {
            *slot = None;
            bad_gateway()
        }
    }
}

async fn connect(addr: &str) -> Result<SendRequest<Body>, Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn bad_gateway() -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(b"bad gateway"))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}
