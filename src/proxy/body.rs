//! Response and request bodies.
//!
//! Invariant: an upstream body is never collected; [`Streamed`] passes each frame on as it
//! arrives, through the URL rewriter when there is one, so memory stays bounded by a frame plus
//! the rewriter's small state whatever the body size. The tenant's in-flight slot rides along and is
//! released when the body ends, fails or is dropped.
//!
//! Every wait on a body is bounded: an upstream body that pauses longer than
//! `timeouts.upstream_body_idle` fails with [`BodyError::Stalled`] (the agent's HTTP/1.1
//! connection closes without the final chunk, an HTTP/2 stream is reset, and the slot is
//! freed); an agent's request body is bounded by [`TimedRequest`] (pause and total).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::proxy::agent_body::AgentBody;
use crate::proxy::rewrite::BodyRewriter;

/// Largest input slice handed to the rewriter at once.
pub const REWRITE_SLICE: usize = 4 * 1024;

/// Why a body stopped mid-stream.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error(transparent)]
    Rewrite(#[from] crate::proxy::rewrite::RewriteError),
    /// The upstream body paused longer than this.
    #[error("Dataverse's response body paused for more than {} ms", .0.as_millis())]
    Stalled(Duration),
    /// The agent's request body was too slow (a pause, or the whole body).
    #[error("the request body {0}")]
    RequestTimeout(String),
}

/// Fires when a body has made no progress for `idle`. The timer is made the first time the body
/// has to wait (a body that is always ready, like a small page that came with its head, never
/// arms one) and moved only when it fires (progress just records the time), so a busy body
/// costs no timer updates per frame.
pub struct IdleWatch {
    idle: Duration,
    last: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleWatch {
    pub fn new(idle: Duration) -> IdleWatch {
        IdleWatch::since(idle, tokio::time::Instant::now())
    }

    /// A watch whose last progress was at `last` (an instant the caller has just read).
    pub fn since(idle: Duration, last: tokio::time::Instant) -> IdleWatch {
        IdleWatch {
            idle,
            last,
            sleep: None,
        }
    }

    fn progress(&mut self) {
        self.last = tokio::time::Instant::now();
    }

    /// Whether the body has been idle for too long (registers a wake-up otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let last = self.last;
        let idle = self.idle;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + idle)));
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last + self.idle;
            if tokio::time::Instant::now() >= due {
                return true;
            }
            sleep.as_mut().reset(due);
        }
    }
}

/// An agent's request body with both bounds: at most `idle` between two pieces and `total` for
/// all of it. A timeout fails the body with [`BodyError::RequestTimeout`] and sets the shared
/// flag, so whoever sees the failure (the upstream connection, the reader) can answer 408.
pub struct TimedRequest {
    inner: AgentBody,
    watch: IdleWatch,
    total: Pin<Box<tokio::time::Sleep>>,
    total_limit: Duration,
    timed_out: Arc<AtomicBool>,
}

impl TimedRequest {
    pub fn new(inner: AgentBody, idle: Duration, total: Duration) -> TimedRequest {
        TimedRequest {
            inner,
            watch: IdleWatch::new(idle),
            total: Box::pin(tokio::time::sleep(total)),
            total_limit: total,
            timed_out: Arc::default(),
        }
    }

    /// Set once the body has timed out.
    pub fn timed_out(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.timed_out)
    }

    fn fail(&self, why: String) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.timed_out.store(true, Ordering::Release);
        Poll::Ready(Some(Err(BodyError::RequestTimeout(why))))
    }
}

impl Body for TimedRequest {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        if this.total.as_mut().poll(cx).is_ready() {
            let ms = this.total_limit.as_millis();
            return this.fail(format!("did not arrive whole within {ms} ms"));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.watch.progress();
                Poll::Ready(frame.map(|r| r.map_err(BodyError::from)))
            }
            Poll::Pending if this.watch.expired(cx) => {
                let ms = this.watch.idle.as_millis();
                this.fail(format!("paused for more than {ms} ms"))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BodyError>;

/// `bytes` as a body; no bytes is [`empty`] (which does not allocate).
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    let bytes = bytes.into();
    if bytes.is_empty() {
        return empty();
    }
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// An empty body. `Empty` is zero-sized, so boxing it does not allocate.
pub fn empty() -> BoxBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A response body as the pipeline's last phase receives it: the org's answer streaming through,
/// or one the gateway made. A concrete type rather than a [`BoxBody`], so that the streamed
/// answer is boxed once (by that last phase), not twice.
// The size is the point: the whole enum lives inside that one box, so boxing the large variant
// again would bring back the allocation this type removes.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Streamed(Streamed),
    Made(BoxBody),
}

impl Body for Answer {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Answer::Streamed(s) => Pin::new(s).poll_frame(cx),
            Answer::Made(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Answer::Streamed(s) => s.is_end_stream(),
            Answer::Made(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Answer::Streamed(s) => s.size_hint(),
            Answer::Made(b) => b.size_hint(),
        }
    }
}

/// Boxes an agent's body unchanged (requests going upstream).
pub fn incoming(body: AgentBody) -> BoxBody {
    body.map_err(BodyError::from).boxed()
}

/// An upstream response body on its way to the agent.
/// What a [`Streamed`] body gives back when it has been read to its end: the org's connection
/// lease (implemented in `proxy::org`, which depends on this module, not the other way round).
pub trait Release: Send + Sync {
    /// The body ended (not failed): the connection may serve another request.
    fn release(self: Box<Self>);
}

pub struct Streamed {
    inner: Incoming,
    rewriter: Option<BodyRewriter>,
    /// Input not yet given to the rewriter: it gets at most [`REWRITE_SLICE`] bytes a time, so a
    /// compressed frame can never expand into more than about a thousand times that at once.
    pending: Bytes,
    permit: Option<crate::limit::Slot>,
    done: bool,
    /// The upstream body ended (not failed): its connection can serve another request.
    ended: bool,
    lease: Option<Box<dyn Release>>,
    /// `timeouts.upstream_body_idle`.
    watch: IdleWatch,
}

impl Streamed {
    /// The org's body `inner`, rewritten by `rewriter` when there is one, holding the tenant's
    /// in-flight `permit` and the connection's `lease` (given back when the body has been read
    /// to its end), and failing when Dataverse pauses longer than `idle` between two pieces
    /// (the first pause counted from `since`, when the response head arrived).
    pub fn new(
        inner: Incoming,
        rewriter: Option<BodyRewriter>,
        permit: Option<crate::limit::Slot>,
        lease: impl Release + 'static,
        (idle, since): (Duration, tokio::time::Instant),
    ) -> Streamed {
        Streamed {
            inner,
            rewriter,
            pending: Bytes::new(),
            permit,
            done: false,
            ended: false,
            lease: Some(Box::new(lease)),
            watch: IdleWatch::since(idle, since),
        }
    }

    /// The upstream body was read to its end: nothing more to give, its connection can serve
    /// another request, and the tenant's slot is free.
    fn ended(&mut self) {
        self.done = true;
        self.ended = true;
        self.permit = None;
    }

    fn end(&mut self) -> Result<Option<Bytes>, BodyError> {
        self.ended();
        match &mut self.rewriter {
            Some(r) => Ok(Some(r.finish()?).filter(|b| !b.is_empty())),
            None => Ok(None),
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // Ended, or every byte of a sized body read (hyper may not poll after the last one).
        if (self.ended || self.inner.is_end_stream())
            && let Some(lease) = self.lease.take()
        {
            lease.release();
        }
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let (false, Some(rewriter)) = (this.pending.is_empty(), &mut this.rewriter) {
                if this.pending.len() <= REWRITE_SLICE && this.inner.is_end_stream() {
                    // The body's last bytes (its length was given, and they are all here):
                    // rewritten and finished at once, and the body ends with this frame, so
                    // hyper writes the end of the chunked answer with it.
                    let slice = std::mem::take(&mut this.pending);
                    let last = rewriter.push_last(&slice);
                    this.ended();
                    return Poll::Ready(match last {
                        Ok(out) if out.is_empty() => None,
                        Ok(out) => Some(Ok(Frame::data(out))),
                        Err(e) => Some(Err(e.into())),
                    });
                }
                let slice = this.pending.split_to(this.pending.len().min(REWRITE_SLICE));
                match rewriter.push(&slice) {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                    Err(e) => {
                        this.done = true;
                        this.permit = None;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
            }
            let polled = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(polled) => {
                    // A body that ends here is watched no more (no clock read for it).
                    if !this.inner.is_end_stream() {
                        this.watch.progress();
                    }
                    polled
                }
                Poll::Pending => {
                    if this.watch.expired(cx) {
                        this.done = true;
                        this.permit = None;
                        return Poll::Ready(Some(Err(BodyError::Stalled(this.watch.idle))));
                    }
                    return Poll::Pending;
                }
            };
            let frame = match polled {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    this.done = true;
                    this.permit = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => return Poll::Ready(this.end().transpose().map(|r| r.map(Frame::data))),
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            };
            if this.rewriter.is_none() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            this.pending = data;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.rewriter {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}
