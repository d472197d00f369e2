//! An agent's request body: read off the wire, or built in-process by a front door.
//!
//! The pipeline takes either. The MCP front door ([`crate::proxy::mcp`]) turns each tool call
//! into Web API requests whose bodies it has already serialised; they enter the pipeline as
//! [`AgentBody::Built`] and from there follow the same phases as a request off the wire (size
//! limit, buffering budget, classification, forwarding). Nothing else differs.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

pub enum AgentBody {
    /// Read from the agent's connection.
    Wire(Incoming),
    /// Built in-process; `None` once sent.
    Built(Option<Bytes>),
}

impl AgentBody {
    pub fn built(bytes: impl Into<Bytes>) -> AgentBody {
        let bytes = bytes.into();
        AgentBody::Built((!bytes.is_empty()).then_some(bytes))
    }
}

impl Body for AgentBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            AgentBody::Wire(incoming) => Pin::new(incoming).poll_frame(cx),
            AgentBody::Built(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AgentBody::Wire(incoming) => incoming.is_end_stream(),
            AgentBody::Built(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AgentBody::Wire(incoming) => incoming.size_hint(),
            AgentBody::Built(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// A request extension the MCP front door puts on each request it builds: the tool whose call
/// made it. Only in-process code can set an extension, so an agent cannot claim one. The
/// pipeline copies it into the audit record (`front_door: "mcp"`, `tool`).
#[derive(Debug, Clone)]
pub struct McpTool(pub std::sync::Arc<str>);
