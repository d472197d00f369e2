//! Response and request bodies.
//!
//! Invariant: an upstream body is never collected; [`Streamed`] passes each frame on as it
//! arrives, through the URL rewriter when there is one, so memory stays bounded by a frame plus
//! the rewriter's small state whatever the body size. The tenant's in-flight slot rides along and is
//! released when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::rewrite::BodyRewriter;

/// Largest input slice handed to the rewriter at once.
pub const REWRITE_SLICE: usize = 4 * 1024;

/// Why a body stopped mid-stream.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error(transparent)]
    Rewrite(#[from] crate::rewrite::RewriteError),
}

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BodyError>;

pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> BoxBody {
    full(Bytes::new())
}

/// Boxes an incoming body unchanged (requests going upstream).
pub fn incoming(body: Incoming) -> BoxBody {
    body.map_err(BodyError::from).boxed()
}

/// An upstream response body on its way to the agent.
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
    lease: Option<crate::org::Lease>,
}

impl Streamed {
    pub fn new(
        inner: Incoming,
        rewriter: Option<BodyRewriter>,
        permit: Option<crate::limit::Slot>,
    ) -> Streamed {
        Streamed {
            inner,
            rewriter,
            pending: Bytes::new(),
            permit,
            done: false,
            ended: false,
            lease: None,
        }
    }

    /// The upstream connection, given back when the body has been read to its end.
    pub fn with_lease(mut self, lease: crate::org::Lease) -> Streamed {
        self.lease = Some(lease);
        self
    }

    fn end(&mut self) -> Result<Option<Bytes>, BodyError> {
        self.done = true;
        self.ended = true;
        self.permit = None;
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
            let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
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
