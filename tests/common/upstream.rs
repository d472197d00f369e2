//! A small raw-TCP stand-in for Entra ID and Dataverse that misbehaves on purpose.
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: a token, or (with `hang_tokens`) no answer at all;
//! - `GET .../contacts`: a small JSON page, after `delay_ms` (concurrency is recorded);
//! - `GET .../accounts`: status, headers and one chunk, then silence (a stalled stream);
//! - `GET .../leads`: status, headers and one chunk, then the socket closes (truncated);
//! - `GET .../annotations`: a 64 MiB body, written as fast as the reader takes it;
//! - any `POST`/`PATCH`: 204 once the whole body is read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct State {
    pub hang_tokens: AtomicBool,
    pub token_requests: AtomicUsize,
    pub delay_ms: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub data_requests: AtomicUsize,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub state: Arc<State>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, Arc::clone(&shared)));
            }
        });
        Upstream { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The request head: (method, path, content length).
async fn read_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String, usize)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 4);
            let mut lines = head.lines();
            let mut first = lines.next()?.split(' ');
            let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
            let length = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            return Some((method, path, length));
        }
        let mut chunk = [0u8; 8192];
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(mut tcp: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    while let Some((method, path, length)) = read_head(&mut tcp, &mut buf).await {
        while buf.len() < length {
            let mut chunk = [0u8; 65536];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        if path.contains("/oauth2/v2.0/token") {
            state.token_requests.fetch_add(1, Ordering::SeqCst);
            if state.hang_tokens.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let body = r#"{"token_type":"Bearer","expires_in":3599,"access_token":"token-1"}"#;
            if !reply(&mut tcp, "200 OK", body).await {
                return;
            }
            continue;
        }
        if method != "GET" {
            if tcp
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let chunked_head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"value\":[{\"a\":1\r\n";
        if path.contains("/accounts") {
            let _ = tcp.write_all(chunked_head.as_bytes()).await;
            std::future::pending::<()>().await;
        }
        if path.contains("/annotations") {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 67108864\r\n\r\n";
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; 1 << 20];
            for _ in 0..64 {
                if tcp.write_all(&block).await.is_err() {
                    return;
                }
            }
            continue;
        }
        if path.contains("/leads") {
            let _ = tcp.write_all(chunked_head.as_bytes()).await;
            return; // closed mid-body
        }
        state.data_requests.fetch_add(1, Ordering::SeqCst);
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !reply(&mut tcp, "200 OK", r#"{"value":[]}"#).await {
            return;
        }
    }
}

async fn reply(tcp: &mut TcpStream, status: &str, body: &str) -> bool {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(text.as_bytes()).await.is_ok()
}
