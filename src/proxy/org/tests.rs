//! The org connection pool against local servers: HTTP/1.1 reuse only after a body's end, a
//! dropped body closes its connection, no request waits behind a stream, a connection the
//! org closed while idle is replaced, and HTTP/2 (ALPN over TLS) multiplexes one connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::OrgClient;
use crate::identity::tls::install_crypto_provider;
use crate::proxy::body;
use crate::proxy::upstream::org_connector;

type Served = Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

fn plain_tls() -> rustls::ClientConfig {
    install_crypto_provider();
    rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

fn client(origin: &str, tls: rustls::ClientConfig) -> Arc<OrgClient> {
    let connector = org_connector(tls, Duration::from_secs(5));
    Arc::new(OrgClient::new(origin, connector, Duration::from_secs(90)).unwrap())
}

fn get(path: &str) -> Request<crate::proxy::body::BoxBody> {
    Request::get(path).body(body::empty()).unwrap()
}

/// An HTTP/1.1 (or, over TLS, HTTP/2) server counting its connections. `/stream` answers with
/// a body whose frames the test sends through the returned channel.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn h1_server(stream_rx: Option<mpsc::Receiver<Bytes>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let stream_rx = Arc::new(tokio::sync::Mutex::new(stream_rx));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let stream_rx = Arc::clone(&stream_rx);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let stream_rx = Arc::clone(&stream_rx);
                    async move { Ok::<_, Infallible>(answer(req, stream_rx).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Server { addr, accepted }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    stream_rx: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<Bytes>>>>,
) -> Served {
    if req.uri().path() == "/stream"
        && let Some(rx) = stream_rx.lock().await.take()
    {
        return Response::new(ChannelBody(rx).boxed());
    }
    if req.uri().path() == "/json" {
        let host = req.headers().get(http::header::HOST).cloned();
        let host = host.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-");
        let json = format!(r#"{{"@odata.context":"http://{host}/api/$metadata#x","v":"h"}}"#);
        return Response::new(Full::new(Bytes::from(json)).boxed());
    }
    let text = format!(
        "{:?} {} host={}",
        req.version(),
        req.uri(),
        req.headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    );
    Response::new(Full::new(Bytes::from(text)).boxed())
}

/// A response body whose frames the test sends.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

async fn text(resp: Response<hyper::body::Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn http1_connections_are_reused_only_after_the_body_ends() {
    let server = h1_server(None).await;
    let org = client(&format!("http://{}", server.addr), plain_tls());
    for i in 0..3 {
        let (resp, lease) = org.send(get(&format!("/api/{i}"))).await.unwrap();
        let body = text(resp).await;
        assert_eq!(body, format!("HTTP/1.1 /api/{i} host={}", server.addr));
        lease.release();
    }
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        1,
        "one connection, reused"
    );

    // A body dropped unread takes its connection with it: the next request opens another.
    let (resp, lease) = org.send(get("/api/unread")).await.unwrap();
    drop(resp);
    drop(lease);
    let (resp, lease) = org.send(get("/api/after")).await.unwrap();
    assert!(text(resp).await.starts_with("HTTP/1.1 /api/after"));
    lease.release();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

/// A rewritten body whose length the org gave ends with its last frame (`is_end_stream`, so
/// hyper ends the agent's chunked answer in the same write), never polled to its end, and its
/// connection still goes back for the next request.
#[tokio::test]
async fn a_sized_rewritten_body_ends_with_its_last_frame_and_frees_its_connection() {
    use crate::proxy::body::Streamed;
    use crate::proxy::rewrite::{BodyRewriter, Encoding, JsonTarget};
    use hyper::body::Body;

    let server = h1_server(None).await;
    let origin = format!("http://{}", server.addr);
    let org = client(&origin, plain_tls());
    let target = JsonTarget::new(&origin, "http://gw.local/t");
    for _ in 0..3 {
        let (resp, lease) = org.send(get("/json")).await.unwrap();
        let rewriter = BodyRewriter::json(Encoding::Identity, Arc::clone(&target));
        let idle = (Duration::from_secs(60), tokio::time::Instant::now());
        let mut body = Streamed::new(resp.into_body(), Some(rewriter), None, lease, idle);
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .expect("a frame")
            .expect("no error");
        assert_eq!(
            frame.into_data().unwrap(),
            r#"{"@odata.context":"http://gw.local/t/api/$metadata#x","v":"h"}"#
        );
        assert!(body.is_end_stream(), "the body ends with its last frame");
        drop(body);
    }
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        1,
        "one connection, reused after each sized body"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout_without_another_request() {
    let server = h1_server(None).await;
    let idle = Duration::from_millis(200);
    let connector = org_connector(plain_tls(), Duration::from_secs(5));
    let origin = format!("http://{}", server.addr);
    let org = Arc::new(OrgClient::new(&origin, connector, idle).unwrap());
    org.start_reaper();
    let (resp, lease) = org.send(get("/api/one")).await.unwrap();
    text(resp).await;
    lease.release();
    let started = std::time::Instant::now();
    // The lease is given back once the connection has seen the end of the message.
    while org.idle_open() == 0 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(org.idle_open(), 1, "kept idle for reuse");
    while org.idle_open() > 0 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_after = started.elapsed();
    assert_eq!(org.idle_open(), 0, "the reaper closed it");
    assert!(
        closed_after < idle * 2 + Duration::from_millis(500),
        "closed {closed_after:?} after release; idle timeout {idle:?}"
    );
}

#[tokio::test]
async fn a_request_never_waits_behind_a_stream_in_progress() {
    let (chunks, rx) = mpsc::channel(4);
    let server = h1_server(Some(rx)).await;
    let org = client(&format!("http://{}", server.addr), plain_tls());
    let (streaming, stream_lease) = org.send(get("/stream")).await.unwrap();
    let mut streaming = streaming.into_body();
    chunks.send(Bytes::from_static(b"first")).await.unwrap();
    let first = streaming
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(first, "first");

    // The stream holds its connection; this request gets its own and completes meanwhile.
    let (resp, lease) = org.send(get("/api/meanwhile")).await.unwrap();
    assert!(text(resp).await.starts_with("HTTP/1.1 /api/meanwhile"));
    lease.release();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);

    drop(chunks);
    assert!(streaming.frame().await.is_none(), "the stream ends");
    stream_lease.release();
    // Both connections are idle now; two more requests need no new one.
    for _ in 0..2 {
        let (resp, lease) = org.send(get("/api/again")).await.unwrap();
        text(resp).await;
        lease.release();
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_org_closed_while_idle_is_replaced() {
    // Answers one request per connection, then closes it (without saying so).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tcp.read(&mut buf).await.unwrap();
                    assert!(n > 0);
                    head.extend_from_slice(&buf[..n]);
                }
                tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                drop(tcp);
                let _ = closed_tx.send(());
            });
        }
    });
    let org = client(&format!("http://{addr}"), plain_tls());
    let (resp, lease) = org.send(get("/one")).await.unwrap();
    assert_eq!(text(resp).await, "ok");
    lease.release();
    closed.recv().await.unwrap();
    // Let the idle connection's task see the close (no timer: it is driven by the socket).
    for _ in 0..10_000 {
        if org.idle_open() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let (resp, lease) = org.send(get("/two")).await.unwrap();
    assert_eq!(text(resp).await, "ok");
    lease.release();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http2_over_tls_multiplexes_one_connection() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    install_crypto_provider();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "org pool test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();

    let mut server_tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    server_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let tls = acceptor.accept(tcp).await.unwrap();
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let none = Arc::new(tokio::sync::Mutex::new(None));
                    Ok::<_, Infallible>(answer(req, none).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let org = client(&format!("https://localhost:{port}"), tls);
    let (a, b) = tokio::join!(org.send(get("/api/a")), org.send(get("/api/b")));
    for (resp, path) in [(a.unwrap(), "/api/a"), (b.unwrap(), "/api/b")] {
        assert_eq!(resp.0.version(), Version::HTTP_2);
        let body = text(resp.0).await;
        assert_eq!(
            body,
            format!("HTTP/2.0 https://localhost:{port}{path} host=-")
        );
        resp.1.release();
    }
    let (resp, lease) = org.send(get("/api/c")).await.unwrap();
    text(resp).await;
    lease.release();
    assert!(
        accepted.load(Ordering::SeqCst) <= 2,
        "concurrent first requests may race to connect; later ones share"
    );
    let before = accepted.load(Ordering::SeqCst);
    for _ in 0..5 {
        let (resp, lease) = org.send(get("/api/d")).await.unwrap();
        text(resp).await;
        lease.release();
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        before,
        "one shared connection"
    );
}
