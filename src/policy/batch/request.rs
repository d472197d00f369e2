//! One top-level part of a `$batch`: an `application/http` request or a change set of them.
//!
//! Pure. Invariants: requests are numbered in order across change sets and the count is checked
//! before a request is parsed; a change set holds at least one request, no GET, no change set,
//! unique Content-IDs, and only `$n` references to Content-IDs defined before it; no request
//! targets `$batch`; an inner `Content-Length` is checked against the body, then dropped.

use super::multipart::{Field, boundary_of, header_block, headers, single, split};
use super::{BatchError, ItemRef, PartRef, refs};
use crate::policy::odata::split_byte;

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

/// Parses one top-level part.
pub fn item<'a>(raw: &'a [u8], counter: &mut Counter) -> Result<ItemRef<'a>, BatchError> {
    let (mime, http, kind) = envelope(raw, counter.upcoming())?;
    match kind {
        Kind::Http => {
            let part = part(mime, http, counter)?;
            refs::check(&part, &[], counter.seen)?;
            Ok(ItemRef::Request(part))
        }
        Kind::ChangeSet(boundary) => change_set(boundary, http, counter),
    }
}

fn change_set<'a>(
    boundary: String,
    raw: &'a [u8],
    counter: &mut Counter,
) -> Result<ItemRef<'a>, BatchError> {
    let first = counter.upcoming();
    let mut parts = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for raw in split(raw, &boundary)? {
        let (mime, http, kind) = envelope(raw, counter.upcoming())?;
        if let Kind::ChangeSet(_) = kind {
            let request = counter.upcoming();
            return Err(BatchError::NestedChangeSet { request });
        }
        let part = part(mime, http, counter)?;
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

type Envelope<'a> = (Vec<Field<'a>>, &'a [u8], Kind);

/// The MIME headers of a part, what follows them, and what the part carries.
fn envelope(raw: &[u8], request: usize) -> Result<Envelope<'_>, BatchError> {
    let (lines, rest) = header_block(raw);
    let mime = headers(&lines, request)?;
    let content_type = single(&mime, "Content-Type", request)?
        .ok_or(BatchError::MissingContentType { request })?;
    single(&mime, "Content-ID", request)?;
    if let Some(found) = single(&mime, "Content-Transfer-Encoding", request)?
        && !["binary", "8bit", "7bit"]
            .iter()
            .any(|e| found.eq_ignore_ascii_case(e))
    {
        let found = found.to_string();
        return Err(BatchError::TransferEncoding { request, found });
    }
    if single(&mime, "Content-Length", request)?.is_some() {
        let name = "Content-Length";
        return Err(BatchError::UnsupportedHeader { request, name });
    }
    understood_mime_headers(&mime, request)?;
    let media = split_byte(content_type, b';')
        .next()
        .unwrap_or_default()
        .trim();
    let kind = if media.eq_ignore_ascii_case("application/http") {
        Kind::Http
    } else if media.eq_ignore_ascii_case("multipart/mixed") {
        Kind::ChangeSet(boundary_of(content_type)?)
    } else {
        let found = content_type.to_string();
        return Err(BatchError::PartContentType { request, found });
    };
    let rest = rest.ok_or(BatchError::MissingRequest { request })?;
    Ok((mime, rest, kind))
}

/// A part's MIME headers are framing: only the ones the batch format defines pass, the rest is
/// refused with its name (they are forwarded verbatim, so an unknown one would reach the org
/// unjudged).
fn understood_mime_headers(mime: &[Field<'_>], request: usize) -> Result<(), BatchError> {
    const UNDERSTOOD: [&str; 3] = ["content-type", "content-transfer-encoding", "content-id"];
    for (name, _) in mime {
        match UNDERSTOOD.iter().any(|u| name.eq_ignore_ascii_case(u)) {
            true => {}
            false => {
                let name = name.to_string();
                return Err(BatchError::UnknownPartHeader { request, name });
            }
        }
    }
    Ok(())
}

/// The HTTP request inside an `application/http` part.
fn part<'a>(
    mime_headers: Vec<Field<'a>>,
    http: &'a [u8],
    counter: &mut Counter,
) -> Result<PartRef<'a>, BatchError> {
    let request = counter.next()?;
    let (lines, body) = header_block(skip_blank_lines(http));
    let (line, header_lines) = lines
        .split_first()
        .ok_or(BatchError::MissingRequest { request })?;
    let (method, target, version) =
        request_line(line).ok_or(BatchError::RequestLine { request })?;
    if names_batch(target) {
        return Err(BatchError::NestedBatch { request });
    }
    let mut headers = headers(header_lines, request)?;
    let body = framed_body(&mut headers, body.unwrap_or_default(), request)?;
    let content_id = content_id(&mime_headers, &headers, request)?;
    Ok(PartRef {
        mime_headers,
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
    mime_headers: &[Field<'a>],
    headers: &[Field<'a>],
    request: usize,
) -> Result<Option<&'a str>, BatchError> {
    let outer = single(mime_headers, "Content-ID", request)?;
    let inner = single(headers, "Content-ID", request)?;
    match (outer, inner) {
        (Some(outer), Some(inner)) if outer != inner => Err(BatchError::DuplicateHeader {
            request,
            name: "Content-ID".to_string(),
        }),
        (id, other) => Ok(id.or(other)),
    }
}

fn skip_blank_lines(mut http: &[u8]) -> &[u8] {
    while let Some(rest) = http
        .strip_prefix(b"\r\n")
        .or_else(|| http.strip_prefix(b"\n"))
    {
        http = rest;
    }
    http
}

/// `METHOD target HTTP/1.1`: an upper-case method, a target without spaces or controls, and
/// exactly `HTTP/1.1` (the only version ODataLib accepts in a batch).
fn request_line(line: &[u8]) -> Option<(&str, &str, &str)> {
    let line = std::str::from_utf8(line).ok()?;
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
    let path = target.split(['?', '#']).next().unwrap_or_default();
    // Lower-cased with `%24` read as `$`, a segment is `$batch` exactly when it is `$batch` or
    // `%24batch` in any case (compared in place, without copies).
    split_byte(path, b'/').any(|segment| {
        segment.eq_ignore_ascii_case("$batch") || segment.eq_ignore_ascii_case("%24batch")
    })
}

/// The body, cut to an inner `Content-Length` when one is given (only whitespace may follow it);
/// the header itself is removed. `Transfer-Encoding` has no place inside a batch.
fn framed_body<'a>(
    headers: &mut Vec<Field<'_>>,
    body: &'a [u8],
    request: usize,
) -> Result<&'a [u8], BatchError> {
    if single(headers, "Transfer-Encoding", request)?.is_some() {
        let name = "Transfer-Encoding";
        return Err(BatchError::UnsupportedHeader { request, name });
    }
    let Some(length) = single(headers, "Content-Length", request)? else {
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
