//! Response and request bodies.
//!
//! Invariant: an upstream body is never collected; [`Streamed`] passes each frame on as it
//! arrives, through the URL rewriter when there is one, so memory stays bounded by a frame plus
//! the rewriter's small state whatever the body size. A concurrency permit rides along and is
//! released when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::rewrite::BodyRewriter;

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
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
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
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    done: bool,
}

impl Streamed {
    pub fn new(
        inner: Incoming,
        rewriter: Option<BodyRewriter>,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Streamed {
        Streamed { inner, rewriter, permit, done: false }
    }

    fn end(&mut self) -> Result<Option<Bytes>, BodyError> {
        self.done = true;
        self.permit = None;
        match &mut self.rewriter {
            Some(r) => Ok(Some(r.finish()?).filter(|b| !b.is_empty())),
            None => Ok(None),
        }
    }
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
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
            let Some(rewriter) = &mut this.rewriter else { return Poll::Ready(Some(Ok(Frame::data(data)))) };
            match rewriter.push(&data) {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Err(e) => {
                    this.done = true;
                    this.permit = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
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
