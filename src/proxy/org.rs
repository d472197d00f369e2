//! Connections to one Dataverse org, on hyper's connection-level client: a pool of HTTP/1.1
//! connections, or one shared HTTP/2 connection when the org negotiates `h2` (ALPN).
//!
//! This replaces a general-purpose pooled client on the request path: the gateway knows each
//! tenant's org when the configuration loads, so a request takes a connection from its org's
//! list without hashing a pool key, formatting a `Host` value or running a checkout race.
//!
//! Invariants:
//! - an HTTP/1.1 connection serves one request at a time and goes back to the idle list only
//!   when that request's response body was read to its end ([`Lease::release`]); a body dropped
//!   before its end drops the connection. No response is read by the wrong request, and no
//!   request waits behind another's stream.
//! - a request that was never written (the connection closed while it was idle) is sent again,
//!   at most once on a new connection; a request that was written is never sent again.
//! - idle connections unused for `idle_timeout` are closed by a background reaper (every half
//!   `idle_timeout`, so none outlives it by more than half of it) and when next seen; at most
//!   [`MAX_IDLE`] are kept. The reaper ends when the org's client is dropped.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{HOST, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::Service;

use crate::proxy::body::BoxBody;

/// The most idle HTTP/1.1 connections kept per org.
pub const MAX_IDLE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the connection failed: {0}")]
    Request(#[from] hyper::Error),
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

/// The connections to one org (`scheme://host[:port]`).
pub struct OrgClient {
    connector: HttpsConnector<HttpConnector>,
    scheme: Scheme,
    authority: Authority,
    /// The `Host` header of HTTP/1.1 requests.
    host: HeaderValue,
    idle_timeout: Duration,
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Most recently used last.
    h1: Vec<(http1::SendRequest<BoxBody>, Instant)>,
    h2: Option<http2::SendRequest<BoxBody>>,
}

enum Conn {
    H1(http1::SendRequest<BoxBody>),
    H2(http2::SendRequest<BoxBody>),
}

/// An HTTP/1.1 connection lent to one request until its response body ends.
pub struct Lease {
    conn: Option<(http1::SendRequest<BoxBody>, Arc<OrgClient>)>,
}

impl Lease {
    /// The response body was read to its end: the connection may serve another request.
    pub fn release(mut self) {
        if let Some((conn, org)) = self.conn.take() {
            org.put(conn);
        }
    }
}

impl crate::proxy::body::Release for Lease {
    fn release(self: Box<Self>) {
        Lease::release(*self);
    }
}

impl OrgClient {
    /// `origin` is the org's base URL; its path, if any, is not used.
    pub fn new(
        origin: &str,
        connector: HttpsConnector<HttpConnector>,
        idle_timeout: Duration,
    ) -> Result<OrgClient, String> {
        let uri: Uri = origin
            .parse()
            .map_err(|e| format!("`{origin}` is not a URL: {e}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(format!("`{origin}` has no scheme or host"));
        };
        let default_port = match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let host = match authority.port_u16() {
            Some(p) if Some(p) == default_port => authority.host(),
            _ => authority.as_str(),
        };
        let host = HeaderValue::from_str(host).map_err(|e| format!("`{origin}`: {e}"))?;
        Ok(OrgClient {
            connector,
            scheme,
            authority,
            host,
            idle_timeout,
            idle: Mutex::default(),
        })
    }

    /// Sends `req`, whose URI is in origin form (`/api/data/...?...`), to the org. The lease
    /// must be released when the response body has been read to its end.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<BoxBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        self.send_at(req, Instant::now()).await
    }

    /// [`OrgClient::send`] for a caller that has just read the clock: `now` ages the idle
    /// connections on the first attempt (a later attempt, after a wait, reads the clock).
    pub async fn send_at(
        self: &Arc<Self>,
        mut req: Request<BoxBody>,
        now: Instant,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let mut fresh = false;
        let mut first = Some(now);
        loop {
            let now = first.take().unwrap_or_else(Instant::now);
            let conn = match self.take_idle(now) {
                Some(c) => c,
                None => {
                    fresh = true;
                    self.connect().await?
                }
            };
            let sent = match conn {
                Conn::H1(mut s) => {
                    if s.ready().await.is_err() {
                        continue; // closed while idle; the request was not involved
                    }
                    req.headers_mut()
                        .entry(HOST)
                        .or_insert_with(|| self.host.clone());
                    s.try_send_request(req).await.map(|r| {
                        let lease = Lease {
                            conn: Some((s, Arc::clone(self))),
                        };
                        (r, lease)
                    })
                }
                Conn::H2(mut s) => {
                    if s.ready().await.is_err() {
                        self.forget_h2();
                        continue;
                    }
                    self.absolute(&mut req);
                    let sent = s.try_send_request(req).await;
                    if sent.is_err() {
                        // Refused or going away: the next attempt opens a new connection.
                        self.forget_h2();
                    }
                    sent.map(|r| (r, Lease { conn: None }))
                }
            };
            match sent {
                Ok(done) => return Ok(done),
                Err(e) => req = unsent(e, fresh)?,
            }
        }
    }

    /// An idle connection that is still open, if any.
    fn take_idle(&self, now: Instant) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h2) = &idle.h2 {
            if !h2.is_closed() {
                return Some(Conn::H2(h2.clone()));
            }
            idle.h2 = None;
        }
        while let Some((conn, since)) = idle.h1.pop() {
            if !conn.is_closed() && now.saturating_duration_since(since) < self.idle_timeout {
                return Some(Conn::H1(conn));
            }
        }
        None
    }

    fn put(self: &Arc<Self>, conn: http1::SendRequest<BoxBody>) {
        if conn.is_closed() {
            return;
        }
        if !conn.is_ready() {
            // The connection has not yet seen the end of the message it read; it will shortly.
            let org = Arc::clone(self);
            tokio::spawn(async move {
                let mut conn = conn;
                if conn.ready().await.is_ok() {
                    org.put(conn);
                }
            });
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if idle.h1.len() >= MAX_IDLE {
            // Full: make room by dropping the closed and expired ones (otherwise the reaper and
            // `take_idle` do, so a return does not walk the whole pool).
            let timeout = self.idle_timeout;
            idle.h1
                .retain(|(c, since)| !c.is_closed() && now.duration_since(*since) < timeout);
        }
        if idle.h1.len() < MAX_IDLE {
            idle.h1.push((conn, now));
        }
    }

    /// Starts the task that closes idle connections unused for `idle_timeout` (once per
    /// client; needs a Tokio runtime, else connections are only reaped when next seen).
    pub fn start_reaper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(org) = weak.upgrade() else { return };
                org.reap();
            }
        });
    }

    /// Closes (drops) the idle connections unused for `idle_timeout` or already closed.
    fn reap(&self) {
        let timeout = self.idle_timeout;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.h1
            .retain(|(c, since)| !c.is_closed() && since.elapsed() < timeout);
    }

    fn forget_h2(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).h2 = None;
    }

    /// Idle HTTP/1.1 connections still open (for tests).
    #[cfg(test)]
    fn idle_open(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.h1.iter().filter(|(c, _)| !c.is_closed()).count()
    }

    /// HTTP/2 carries the scheme and authority in the request target.
    fn absolute(&self, req: &mut Request<BoxBody>) {
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        req.headers_mut().remove(HOST);
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let target = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Connect(e.to_string()))?;
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?;
        let io = connector
            .call(target)
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?;
        if io.connected().is_negotiated_h2() {
            let (send, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| SendError::Connect(e.to_string()))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP/2 connection to Dataverse ended");
                }
            });
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.h2 = Some(send.clone());
            return Ok(Conn::H2(send));
        }
        let (send, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP/1.1 connection to Dataverse ended");
            }
        });
        Ok(Conn::H1(send))
    }
}

/// The request back when it was never written and may go on a new connection; else the error.
fn unsent(
    mut e: TrySendError<Request<BoxBody>>,
    fresh: bool,
) -> Result<Request<BoxBody>, SendError> {
    match e.take_message() {
        Some(req) if !fresh => Ok(req),
        _ => Err(SendError::Request(e.into_error())),
    }
}

#[cfg(test)]
mod tests;
