//! The large `annotations` collection, generated lazily chunk by chunk.
//!
//! [`Chunks`] is a pure iterator over the body: first the `@odata.context` and the rows written
//! through the API (few and small), then synthetic attachment rows of about 64 KiB each whose
//! `documentbody` is base64-looking filler, then `]}`. Only the current chunk is ever in memory.
//! When the target is larger than the head and tail, the body is exactly `target` bytes long;
//! otherwise it is just the head and tail. [`Stream`] adapts it to a hyper body, producing a
//! chunk only when hyper asks for one (so a slow reader applies backpressure).
//!
//! Synthetic rows are not in the store: `annotations(<their id>)` is a 404.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame};

use super::schema::seeded_id;
use super::seed::ANNOTATION_PREFIX;

/// `documentbody` bytes per synthetic row.
const DOC_BYTES: usize = 64 * 1024 - 160;
const TAIL: &[u8] = b"]}";
const FILLER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The body's chunks, in order.
pub struct Chunks {
    head: Option<Bytes>,
    target: u64,
    written: u64,
    /// Rows written so far, including the stored rows in the head.
    rows: usize,
    next_index: u64,
    done: bool,
}

impl Chunks {
    /// `context` is the `@odata.context` URL; `stored` are the serialized stored rows.
    pub fn new(context: &str, stored: Vec<String>, target: u64) -> Self {
        let context = serde_json::Value::String(context.into());
        let head = format!(
            "{{\"@odata.context\":{context},\"value\":[{}",
            stored.join(",")
        );
        Self {
            head: Some(Bytes::from(head)),
            target,
            written: 0,
            rows: stored.len(),
            next_index: 1,
            done: false,
        }
    }

    /// The row with `doc_len` filler bytes, preceded by a comma unless it is the first row.
    fn row(&self, doc_len: usize) -> Bytes {
        let i = self.next_index;
        let id = seeded_id(ANNOTATION_PREFIX, i);
        let prefix = format!(
            "{}{{\"@odata.etag\":\"W/\\\"{}\\\"\",\"annotationid\":\"{id}\",\"subject\":\"Attachment {i}\",\"documentbody\":\"",
            if self.rows > 0 { "," } else { "" },
            500 + i,
        );
        let mut out = BytesMut::with_capacity(prefix.len() + doc_len + 2);
        out.put_slice(prefix.as_bytes());
        let offset = (i as usize) % FILLER.len();
        out.extend((0..doc_len).map(|n| FILLER[(n + offset) % FILLER.len()]));
        out.put_slice(b"\"}");
        out.freeze()
    }

    fn overhead(&self) -> u64 {
        self.row(0).len() as u64
    }
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if let Some(head) = self.head.take() {
            self.written += head.len() as u64;
            return Some(head);
        }
        let left = self.target.saturating_sub(self.written + TAIL.len() as u64);
        let overhead = self.overhead();
        if left <= overhead {
            self.done = true;
            self.written += TAIL.len() as u64;
            return Some(Bytes::from_static(TAIL));
        }
        // A full row, unless the rest would then be too small for a row of its own (the next
        // row's overhead is at most a comma and two digits more): then leave it a short one.
        let room = left - overhead;
        let full = DOC_BYTES as u64;
        let doc_len = if room <= full {
            room
        } else if room >= full + overhead + 8 {
            full
        } else {
            room - overhead - 8
        };
        let row = self.row(usize::try_from(doc_len).unwrap_or(DOC_BYTES));
        self.written += row.len() as u64;
        self.rows += 1;
        self.next_index += 1;
        Some(row)
    }
}

/// A hyper body over [`Chunks`].
pub struct Stream(pub Chunks);

impl Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.next().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: Chunks) -> (Vec<u8>, usize) {
        let mut body = Vec::new();
        let mut biggest = 0;
        for chunk in chunks {
            biggest = biggest.max(chunk.len());
            body.extend_from_slice(&chunk);
        }
        (body, biggest)
    }

    #[test]
    fn body_is_exact_valid_json_in_bounded_chunks() {
        for target in [1 << 20, 100_000, 64 * 1024 + 7, 3_000] {
            let (body, biggest) = collect(Chunks::new(
                "http://x/$metadata#annotations",
                Vec::new(),
                target,
            ));
            assert_eq!(body.len() as u64, target, "target {target}");
            assert!(biggest <= 64 * 1024, "chunk of {biggest}");
            let json: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            let rows = json["value"].as_array().expect("rows");
            assert!(!rows.is_empty());
            assert_eq!(rows[0]["subject"], "Attachment 1");
        }
    }

    #[test]
    fn stored_rows_come_first_and_tiny_targets_still_give_valid_json() {
        let stored = vec![r#"{"annotationid":"x","subject":"mine"}"#.to_string()];
        let (body, _) = collect(Chunks::new("ctx", stored, 10));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(json["value"].as_array().map(Vec::len), Some(1));
        assert_eq!(json["value"][0]["subject"], "mine");
        let (body, _) = collect(Chunks::new("ctx", vec![r#"{"a":1}"#.into()], 200_000));
        assert_eq!(body.len(), 200_000);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(json["value"][0]["a"], 1);
    }
}
