//! `$batch`: the OData 4.0 `multipart/mixed` batch body Dataverse accepts, parsed into requests
//! the policy can judge one by one, and written back in one canonical form.
//!
//! Pure: no I/O, no clock, and no panic on any input. Invariants:
//! - forward what was judged: the gateway sends [`serialize`]`(&batch)` upstream, never the
//!   agent's bytes, and `parse(serialize(b))` equals `b` for every parsed `b`;
//! - framing is unambiguous or refused: the boundary string may appear in the body only as a
//!   delimiter line, the close delimiter is required, header lines are `Name: value` (no folding,
//!   no control characters), framing headers (Content-Type, Content-ID, Content-Transfer-Encoding,
//!   Content-Length) appear at most once, transfer encodings other than binary/7bit/8bit and an
//!   inner `Transfer-Encoding` are refused, and an inner `Content-Length` must match the body;
//! - Dataverse's structural rules hold: at most `max_parts` requests counting those inside change
//!   sets, no GET, nested change set or empty change set, no request to `$batch`, Content-IDs
//!   unique within a change set, and every `$n` reference (request target, `@odata.bind` or
//!   `@odata.id` in a JSON body) names a Content-ID defined earlier in the same change set;
//! - tolerant of what real clients send: CRLF, LF-only or mixed line endings, any header-name
//!   case, whitespace around header colons (`Content-Transfer-Encoding:binary`), a quoted
//!   boundary, a preamble and an epilogue, relative, absolute or `$n` request targets.
//!
//! Fail closed by construction: every element of the format is either understood and carried
//! into [`Batch`] — the boundary, the part headers Content-Type, Content-Transfer-Encoding and
//! Content-ID (any other part header is refused by name), the request line, the inner headers
//! (judged and filtered like a top-level request's by [`crate::policy::inspect`]), the body — or the
//! batch is refused with a [`BatchError`] naming it.
//!
//! Content-Length is framing, not data: [`parse`] checks and consumes the inner `Content-Length`
//! (it never appears in [`Part::headers`]) and [`serialize`] writes one for every non-empty
//! body. Every [`BatchError`] is the agent's fault (400, not retryable).

mod multipart;
mod refs;
mod request;
pub(crate) mod serialize;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use multipart::boundary_of;
pub use serialize::serialize;

/// A parsed `$batch` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub boundary: String,
    pub items: Vec<Item>,
}

/// A top-level part: one request, or an atomic change set of requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Request(Part),
    ChangeSet { boundary: String, parts: Vec<Part> },
}

/// One `application/http` part: its MIME headers and the HTTP request it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's MIME headers as written (names keep their case, values are trimmed). They are
    /// serialized verbatim, Content-ID included.
    pub mime_headers: Vec<(String, String)>,
    /// The `Content-ID`, mirrored from `mime_headers` or, where ODataLib also looks for it, from
    /// `headers` (both present and different is refused).
    pub content_id: Option<String>,
    pub method: String,
    pub target: String,
    pub version: String,
    /// The inner HTTP request headers, without `Content-Length`.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    /// The first inner header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Removes the inner headers whose name (as written) satisfies `pred`.
    pub fn remove_headers(&mut self, pred: impl Fn(&str) -> bool) {
        self.headers.retain(|(name, _)| !pred(name));
    }
}

impl Batch {
    /// The `Content-Type` to send with [`serialize`]`(self)`.
    pub fn content_type(&self) -> String {
        format!(
            "multipart/mixed; boundary={}",
            serialize::quote(&self.boundary)
        )
    }

    /// Every request, change-set members included, in order.
    pub fn parts(&self) -> impl Iterator<Item = &Part> {
        self.items.iter().flat_map(|item| match item {
            Item::Request(part) => std::slice::from_ref(part),
            Item::ChangeSet { parts, .. } => parts.as_slice(),
        })
    }
}

/// Why a `$batch` body is refused. `request` is the 1-based position of the request concerned,
/// counting requests inside change sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("$batch: the Content-Type must be multipart/mixed")]
    NotMultipart,
    #[error("$batch: the multipart/mixed Content-Type has no boundary parameter")]
    MissingBoundary,
    #[error("$batch: the multipart boundary is empty, too long, repeated or not RFC 2046")]
    InvalidBoundary,
    #[error("$batch: the body has no `--{boundary}` delimiter line")]
    NoDelimiter { boundary: String },
    #[error("$batch: the body ends before the close delimiter `--{boundary}--`")]
    Unterminated { boundary: String },
    #[error("$batch: the boundary `{boundary}` appears inside a part, not as a delimiter line")]
    StrayBoundary { boundary: String },
    #[error("$batch request {request}: a header line is not `Name: value` or is folded")]
    MalformedHeader { request: usize },
    #[error("$batch request {request}: the `{name}` header appears more than once")]
    DuplicateHeader { request: usize, name: String },
    #[error("$batch request {request}: the part has no Content-Type")]
    MissingContentType { request: usize },
    #[error(
        "$batch request {request}: the part Content-Type must be application/http or \
         multipart/mixed (a change set), not `{found}`"
    )]
    PartContentType { request: usize, found: String },
    #[error("$batch request {request}: Content-Transfer-Encoding `{found}` is not supported")]
    TransferEncoding { request: usize, found: String },
    #[error("$batch request {request}: the `{name}` header is not allowed here")]
    UnsupportedHeader { request: usize, name: &'static str },
    #[error(
        "$batch request {request}: the part header `{name}` is not one the gateway understands \
         (Content-Type, Content-Transfer-Encoding, Content-ID)"
    )]
    UnknownPartHeader { request: usize, name: String },
    #[error("$batch request {request}: the part has no HTTP request after its headers")]
    MissingRequest { request: usize },
    #[error("$batch request {request}: the request line must be `METHOD target HTTP/1.1`")]
    RequestLine { request: usize },
    #[error("$batch request {request}: Content-Length does not match the body")]
    ContentLength { request: usize },
    #[error("$batch request {request}: a change set cannot hold a GET request")]
    GetInChangeSet { request: usize },
    #[error("$batch request {request}: change sets cannot be nested")]
    NestedChangeSet { request: usize },
    #[error("$batch request {request}: a change set must hold at least one request")]
    EmptyChangeSet { request: usize },
    #[error("$batch request {request}: a $batch cannot contain another $batch")]
    NestedBatch { request: usize },
    #[error("$batch request {request}: Content-ID `{id}` is used twice in one change set")]
    DuplicateContentId { request: usize, id: String },
    #[error(
        "$batch request {request}: `${id}` names no Content-ID defined earlier in the same \
         change set"
    )]
    UnknownContentId { request: usize, id: String },
    #[error("$batch: more than {max} requests")]
    TooManyRequests { max: usize },
}

/// Parses a `$batch` body sent with `content_type`; see the module invariants.
pub fn parse(content_type: &str, body: &[u8], max_parts: usize) -> Result<Batch, BatchError> {
    let parsed = parse_borrowed(content_type, body, max_parts)?;
    Ok(Batch {
        items: parsed.items.iter().map(ItemRef::to_item).collect(),
        boundary: parsed.boundary,
    })
}

/// [`parse`] without copies: the same checks (it is the one reader, [`parse`] copies its
/// result), every field borrowed from `body`.
pub fn parse_borrowed<'a>(
    content_type: &str,
    body: &'a [u8],
    max_parts: usize,
) -> Result<BatchRef<'a>, BatchError> {
    let boundary = boundary_of(content_type)?;
    let mut counter = request::Counter::new(max_parts);
    let parts = multipart::split(body, &boundary)?;
    // One UTF-8 check for the whole body: each part's text is its share of it.
    let text = multipart::text_prefix(body);
    // Sized once (never beyond the part limit: the count is the agent's).
    let mut items = Vec::with_capacity(parts.len().min(max_parts));
    for part in parts {
        let text = multipart::text_of(body, text, part.clone());
        request::item(&body[part], text, &mut counter, &mut items)?;
    }
    Ok(BatchRef { boundary, items })
}

/// A parsed `$batch` whose parts borrow from the body ([`parse_borrowed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRef<'a> {
    pub boundary: String,
    pub items: Vec<ItemRef<'a>>,
}

/// [`Item`], borrowing from the body.
// A request is held in place, headers and all (boxing it would allocate for every part, which
// is what the in-place headers avoid); batches hold requests far more often than change sets.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRef<'a> {
    Request(PartRef<'a>),
    ChangeSet {
        boundary: String,
        parts: Vec<PartRef<'a>>,
    },
}

impl<'a> ItemRef<'a> {
    /// The requests of this item, in order.
    pub fn parts(&self) -> &[PartRef<'a>] {
        match self {
            ItemRef::Request(part) => std::slice::from_ref(part),
            ItemRef::ChangeSet { parts, .. } => parts,
        }
    }

    fn to_item(&self) -> Item {
        match self {
            ItemRef::Request(part) => Item::Request(part.to_part()),
            ItemRef::ChangeSet { boundary, parts } => Item::ChangeSet {
                boundary: boundary.clone(),
                parts: parts.iter().map(PartRef::to_part).collect(),
            },
        }
    }
}

/// A part's MIME headers, borrowed: at most three pass the parser (Content-Type, Content-ID,
/// Content-Transfer-Encoding), held in place.
pub type MimeHeaders<'a> = multipart::Fields<'a, 3>;

/// A request's inner headers, borrowed: the first few held in place.
pub type RequestHeaders<'a> = multipart::Fields<'a, 6>;

/// [`Part`], borrowing from the body: the same fields with the same meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef<'a> {
    pub mime_headers: MimeHeaders<'a>,
    pub content_id: Option<&'a str>,
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'a str,
    /// The inner HTTP request headers, without `Content-Length`.
    pub headers: RequestHeaders<'a>,
    pub body: &'a [u8],
}

impl PartRef<'_> {
    /// The owned [`Part`] with the same fields.
    pub fn to_part(&self) -> Part {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        Part {
            mime_headers: pairs(&self.mime_headers),
            content_id: self.content_id.map(str::to_string),
            method: self.method.to_string(),
            target: self.target.to_string(),
            version: self.version.to_string(),
            headers: pairs(&self.headers),
            body: Bytes::copy_from_slice(self.body),
        }
    }
}
