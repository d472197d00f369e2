//! One top-level part of a `$batch`: an `application/http` request or a change set of them.
//!
//! Pure. Invariants: requests are numbered in order across change sets and the count is checked
//! before a request is parsed; a change set holds at least one request, no GET, no change set,
//! unique Content-IDs, and only `$n` references to Content-IDs defined before it; no request
//! targets `$batch`; an inner `Content-Length` is checked against the body, then dropped.

use super::multipart::{Lines, Seen, boundary_of, header, split, text_of, which};
use super::{BatchError, ItemRef, MimeHeaders, PartRef, RequestHeaders, refs};
use crate::policy::odata::{find_byte, find_byte2, split_byte};

/// Counts requests against the maximum.
pub struct Counter {
    seen: usize,
    max: usize,
}

impl Counter {
    pub fn new(max: usize) -> Self {
        Counter { seen: 0, max }
    }

    /// The number the next request will get.
    fn upcoming(&self) -> usize {
        self.seen.saturating_add(1)
    }

    fn next(&mut self) -> Result<usize, BatchError> {
        self.seen = self.upcoming();
        if self.seen > self.max {
            return Err(BatchError::TooManyRequests { max: self.max });
        }
        Ok(self.seen)
    }
}

/// What a part's Content-Type says it carries.
enum Kind {
    Http,
    ChangeSet(String),
}

/// Parses one top-level part onto `items` (`text` is the longest UTF-8 prefix of `raw`).
pub fn item<'a>(
    raw: &'a [u8],
    text: &'a str,
    counter: &mut Counter,
    items: &mut Vec<ItemRef<'a>>,
) -> Result<(), BatchError> {
    let envelope = envelope(raw, text, counter.upcoming())?;
    match envelope.kind {
        Kind::Http => {
            let part = part(envelope, raw, text, counter)?;
            refs::check(&part, &[], counter.seen)?;
            items.push(ItemRef::Request(part));
        }
        Kind::ChangeSet(boundary) => {
            let rest = envelope.rest..raw.len();
            let text = text_of(raw, text, rest.clone());
            items.push(change_set(boundary, &raw[rest], text, counter)?);
        }
    }
    Ok(())
}

fn change_set<'a>(
    boundary: String,
    raw: &'a [u8],
    text: &'a str,
    counter: &mut Counter,
) -> Result<ItemRef<'a>, BatchError> {
    let first = counter.upcoming();
    let mut parts = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    let (whole, whole_text) = (raw, text);
    for range in split(raw, &boundary)? {
        let text = text_of(whole, whole_text, range.clone());
        let raw = &whole[range];
        let envelope = envelope(raw, text, counter.upcoming())?;
        if let Kind::ChangeSet(_) = envelope.kind {
            let request = counter.upcoming();
            return Err(BatchError::NestedChangeSet { request });
        }
        let part = part(envelope, raw, text, counter)?;
        let request = counter.seen;
        if part.method == "GET" {
            return Err(BatchError::GetInChangeSet { request });
        }
        refs::check(&part, &ids, request)?;
        if let Some(id) = part.content_id {
            if ids.contains(&id) {
                let id = id.to_string();
                return Err(BatchError::DuplicateContentId { request, id });
            }
            ids.push(id);
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err(BatchError::EmptyChangeSet { request: first });
    }
    Ok(ItemRef::ChangeSet { boundary, parts })
}

/// A part's MIME headers, the Content-ID among them, where what follows them starts in the
/// part, and what the part carries.
struct Envelope<'a> {
    mime: MimeHeaders<'a>,
    content_id: Option<&'a str>,
    rest: usize,
    kind: Kind,
}

/// The MIME headers the batch format defines, lowercase; the index of each in [`envelope`].
const MIME: [&str; 4] = [
    "content-type",
    "content-id",
    "content-transfer-encoding",
    "content-length",
];

/// The MIME headers of a part (`text` is the longest UTF-8 prefix of `raw`), what follows them,
/// and what the part carries. Checked in this order: every line is a header, one Content-Type
/// at most and one at least, one Content-ID at most, one Content-Transfer-Encoding at most and
/// a known one, no Content-Length, no other header, a known Content-Type, something after the
/// headers.
fn envelope<'a>(raw: &'a [u8], text: &'a str, request: usize) -> Result<Envelope<'a>, BatchError> {
    let mut lines = Lines::new(raw, text, 0);
    let mut mime = MimeHeaders::new();
    // Noted in one pass: each framing header (by its index in `MIME`), and the first name
    // the gateway does not understand.
    let mut seen = [Seen::default(); 4];
    let mut unknown = None;
    while let Some(line) = lines.next_line() {
        let (name, value) = line
            .and_then(header)
            .ok_or(BatchError::MalformedHeader { request })?;
        match which(name, &MIME) {
            Some(i) => seen[i].note(name, value),
            None => {
                unknown.get_or_insert(name);
            }
        }
        mime.push((name, value));
    }
    let content_type = seen[0]
        .single(request)?
        .ok_or(BatchError::MissingContentType { request })?;
    let content_id = seen[1].single(request)?;
    if let Some(found) = seen[2].single(request)?
        && !known_transfer_encoding(found)
    {
        let found = found.to_string();
        return Err(BatchError::TransferEncoding { request, found });
    }
    if seen[3].single(request)?.is_some() {
        let name = "Content-Length";
        return Err(BatchError::UnsupportedHeader { request, name });
    }
    // A part's MIME headers are framing: only the ones the batch format defines pass, the rest
    // is refused with its name (they are forwarded verbatim, so an unknown one would reach the
    // org unjudged).
    if let Some(name) = unknown {
        let name = name.to_string();
        return Err(BatchError::UnknownPartHeader { request, name });
    }
    // The media type: up to the first `;` (what `split(';').next()` gives), trimmed.
    let media = match find_byte(b';', content_type.as_bytes()) {
        Some(i) => &content_type[..i],
        None => content_type,
    }
    .trim();
    let kind = if media.eq_ignore_ascii_case("application/http") {
        Kind::Http
    } else if media.eq_ignore_ascii_case("multipart/mixed") {
        Kind::ChangeSet(boundary_of(content_type)?)
    } else {
        let found = content_type.to_string();
        return Err(BatchError::PartContentType { request, found });
    };
    let rest = lines.rest().ok_or(BatchError::MissingRequest { request })?;
    Ok(Envelope {
        mime,
        content_id,
        rest,
        kind,
    })
}

/// Whether a Content-Transfer-Encoding is `binary`, `8bit` or `7bit` (any case): the encodings
/// that leave the bytes as they are.
fn known_transfer_encoding(found: &str) -> bool {
    match found.len() {
        6 => found.eq_ignore_ascii_case("binary"),
        4 => found.eq_ignore_ascii_case("8bit") || found.eq_ignore_ascii_case("7bit"),
        _ => false,
    }
}

/// The inner headers the parser reads, lowercase; the index of each in [`part`].
const FRAMING: [&str; 3] = ["transfer-encoding", "content-length", "content-id"];

/// The HTTP request inside an `application/http` part (`text` is the longest UTF-8 prefix of
/// `raw`).
fn part<'a>(
    envelope: Envelope<'a>,
    raw: &'a [u8],
    text: &'a str,
    counter: &mut Counter,
) -> Result<PartRef<'a>, BatchError> {
    let request = counter.next()?;
    let mut lines = Lines::new(raw, text, skip_blank_lines(raw, envelope.rest));
    let line = lines
        .next_line()
        .ok_or(BatchError::MissingRequest { request })?;
    let (method, target, version) = line
        .and_then(request_line)
        .ok_or(BatchError::RequestLine { request })?;
    if names_batch(target) {
        return Err(BatchError::NestedBatch { request });
    }
    let mut headers = RequestHeaders::new();
    let mut seen = [Seen::default(); 3];
    while let Some(line) = lines.next_line() {
        let (name, value) = line
            .and_then(header)
            .ok_or(BatchError::MalformedHeader { request })?;
        if let Some(i) = which(name, &FRAMING) {
            seen[i].note(name, value);
        }
        headers.push((name, value));
    }
    let body = lines.rest().map_or(&[][..], |rest| &raw[rest..]);
    let [transfer_encoding, content_length, content_id] = seen;
    let body = framed_body(
        &mut headers,
        body,
        transfer_encoding,
        content_length,
        request,
    )?;
    let content_id = self::content_id(envelope.content_id, content_id, request)?;
    Ok(PartRef {
        mime_headers: envelope.mime,
        content_id,
        method,
        target,
        version,
        headers,
        body,
    })
}

/// The Content-ID: in the MIME headers or, as ODataLib also reads it, in the request headers;
/// both is ambiguous unless they agree.
fn content_id<'a>(
    outer: Option<&'a str>,
    inner: Seen<'a>,
    request: usize,
) -> Result<Option<&'a str>, BatchError> {
    let inner = inner.single(request)?;
    match (outer, inner) {
        (Some(outer), Some(inner)) if outer != inner => Err(BatchError::DuplicateHeader {
            request,
            name: "Content-ID".to_string(),
        }),
        (id, other) => Ok(id.or(other)),
    }
}

/// Where the request starts: `from`, past any blank lines.
fn skip_blank_lines(raw: &[u8], mut from: usize) -> usize {
    loop {
        match raw.get(from..) {
            Some([b'\r', b'\n', ..]) => from += 2,
            Some([b'\n', ..]) => from += 1,
            _ => return from,
        }
    }
}

/// `METHOD target HTTP/1.1`: an upper-case method, a target without spaces or controls, and
/// exactly `HTTP/1.1` (the only version ODataLib accepts in a batch).
fn request_line(line: &str) -> Option<(&str, &str, &str)> {
    if crate::policy::odata::has_control(line, &[]) {
        return None;
    }
    let mut words = split_byte(line, b' ').filter(|w| !w.is_empty());
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    let valid = words.next().is_none()
        && method.len() <= 20
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && version == "HTTP/1.1";
    valid.then_some((method, target, version))
}

/// Whether any path segment of `target` is `$batch` (also percent-encoded, any case).
fn names_batch(target: &str) -> bool {
    let path = match find_byte2(b'?', b'#', target.as_bytes()) {
        Some(i) => &target[..i],
        None => target,
    };
    // Either spelling holds a `$` or a `%`: a path with neither (most paths) names no `$batch`,
    // which one vectorised search says without splitting it.
    if memchr::memchr2(b'$', b'%', path.as_bytes()).is_none() {
        return false;
    }
    // Lower-cased with `%24` read as `$`, a segment is `$batch` exactly when it is `$batch` or
    // `%24batch` in any case (compared in place, without copies).
    split_byte(path, b'/').any(|segment| {
        segment.eq_ignore_ascii_case("$batch") || segment.eq_ignore_ascii_case("%24batch")
    })
}

/// The body, cut to an inner `Content-Length` when one is given (only whitespace may follow it);
/// the header itself is removed. `Transfer-Encoding` has no place inside a batch.
fn framed_body<'a>(
    headers: &mut RequestHeaders<'_>,
    body: &'a [u8],
    transfer_encoding: Seen<'_>,
    content_length: Seen<'_>,
    request: usize,
) -> Result<&'a [u8], BatchError> {
    if transfer_encoding.single(request)?.is_some() {
        let name = "Transfer-Encoding";
        return Err(BatchError::UnsupportedHeader { request, name });
    }
    let Some(length) = content_length.single(request)? else {
        return Ok(body);
    };
    let mismatch = BatchError::ContentLength { request };
    let digits =
        !length.is_empty() && length.len() <= 19 && length.bytes().all(|b| b.is_ascii_digit());
    let length = digits
        .then(|| length.parse::<usize>().ok())
        .flatten()
        .filter(|&n| n <= body.len())
        .ok_or(mismatch.clone())?;
    let (body, excess) = body.split_at(length);
    if !excess.iter().all(|b| b" \t\r\n".contains(b)) {
        return Err(mismatch);
    }
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("Content-Length"));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::names_batch;

    /// The in-place comparison decides as the lower-casing, `%24`-replacing one did.
    #[test]
    fn a_batch_segment_is_found_as_the_copying_check_found_it() {
        let copying = |target: &str| {
            let path = target.split(['?', '#']).next().unwrap_or_default();
            path.split('/')
                .any(|segment| segment.to_ascii_lowercase().replace("%24", "$") == "$batch")
        };
        for target in [
            "$batch",
            "$BATCH",
            "%24batch",
            "%24Batch",
            "a/%24BATCH?x",
            "$$batch",
            "%24%24batch",
            "%2524batch",
            "%24batch%24",
            "$batchx",
            "x$batch",
            "api/data/v9.2/$batch#f",
            "contacts?$batch",
            "%24",
            "",
        ] {
            assert_eq!(names_batch(target), copying(target), "{target}");
        }
    }
}
