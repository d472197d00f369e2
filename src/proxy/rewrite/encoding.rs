//! What a response's headers say about its body: its `Content-Encoding` ([`Encoding`]), which
//! rewriter its `Content-Type` needs ([`RewriteKind`]), and what can go wrong ([`RewriteError`]).
//! Pure parsing of header values.

use std::{fmt, io};

/// Why a response body could not be rewritten. Every variant but [`RewriteError::Closed`] is
/// upstream's fault (Dataverse sent a body the gateway cannot decode) and not retryable; `Closed`
/// is a bug in the caller.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// A `Content-Encoding` other than identity, gzip or deflate, or several stacked.
    #[error("unsupported content-encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The compressed stream is malformed, truncated, or fails its checksum.
    #[error("the {encoding} response body is corrupt: {source}")]
    Corrupt {
        encoding: Encoding,
        source: io::Error,
    },
    /// Bytes after the end of a zlib or raw deflate stream (gzip accepts further members).
    #[error("the {0} response body continues after the end of its compressed stream")]
    TrailingData(Encoding),
    /// `push` or `finish` after `finish`, or after an error.
    #[error("the response body rewriter was used after it finished or failed")]
    Closed,
}

/// A response's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// HTTP "deflate": zlib-wrapped in practice; raw deflate is accepted too (sniffed).
    Deflate,
}

impl Encoding {
    /// Parses `Content-Encoding`. `identity` entries are ignored; more than one real coding, or
    /// any coding other than gzip (`x-gzip`) and deflate, is an error.
    pub fn from_header(value: Option<&str>) -> Result<Self, RewriteError> {
        let mut codings = value
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
        let encoding = match codings.next() {
            None => return Ok(Self::Identity),
            Some(c) if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") => {
                Self::Gzip
            }
            Some(c) if c.eq_ignore_ascii_case("deflate") => Self::Deflate,
            Some(c) => return Err(RewriteError::UnsupportedEncoding(c.to_owned())),
        };
        match codings.next() {
            None => Ok(encoding),
            Some(_) => Err(RewriteError::UnsupportedEncoding(
                value.unwrap_or("").trim().to_owned(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rewriter a response body needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteKind {
    Json,
    Text,
}

impl RewriteKind {
    /// `application/json` and `+json` types (any parameters) -> Json; `multipart/mixed`
    /// (`$batch`) -> Text; anything else (`$metadata` XML, `$count` text, `$value` bytes) -> None,
    /// to be passed through untouched.
    pub fn for_content_type(value: Option<&str>) -> Option<Self> {
        let value = value?;
        // What Dataverse sends on every page (`application/json; odata.metadata=...`), decided
        // without splitting; the same answer as the general reading below.
        let b = value.as_bytes();
        if b.len() >= 16
            && b[..16].eq_ignore_ascii_case(b"application/json")
            && matches!(b.get(16), None | Some(b';'))
        {
            return Some(Self::Json);
        }
        let essence = value.split(';').next()?.trim();
        let (kind, subtype) = essence.split_once('/')?;
        let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let json_suffix = subtype.len() >= 5
            && subtype.is_char_boundary(subtype.len() - 5)
            && is(&subtype[subtype.len() - 5..], "+json");
        if (is(kind, "application") && is(subtype, "json")) || json_suffix {
            Some(Self::Json)
        } else if is(kind, "multipart") && is(subtype, "mixed") {
            Some(Self::Text)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_encoding_header_parses() {
        let ok = [
            (None, Encoding::Identity),
            (Some(""), Encoding::Identity),
            (Some("identity"), Encoding::Identity),
            (Some("gzip"), Encoding::Gzip),
            (Some(" GZip "), Encoding::Gzip),
            (Some("x-gzip"), Encoding::Gzip),
            (Some("deflate"), Encoding::Deflate),
            (Some("gzip, identity"), Encoding::Gzip),
        ];
        for (header, want) in ok {
            assert_eq!(Encoding::from_header(header).unwrap(), want, "{header:?}");
        }
        for header in ["br", "zstd", "gzip, deflate", "compress"] {
            let err = Encoding::from_header(Some(header)).unwrap_err();
            assert!(
                matches!(err, RewriteError::UnsupportedEncoding(_)),
                "{header}"
            );
        }
    }

    #[test]
    fn content_type_picks_the_rewriter() {
        let cases = [
            (
                Some(
                    "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8",
                ),
                Some(RewriteKind::Json),
            ),
            (Some("Application/JSON"), Some(RewriteKind::Json)),
            (Some("application/problem+json"), Some(RewriteKind::Json)),
            (
                Some("multipart/mixed; boundary=batchresponse_1"),
                Some(RewriteKind::Text),
            ),
            (Some("MULTIPART/Mixed"), Some(RewriteKind::Text)),
            (Some("application/Problem+JSON"), Some(RewriteKind::Json)),
            (Some("application/é+json"), Some(RewriteKind::Json)),
            (Some("application/éjson"), None),
            (Some("application/+jso"), None),
            (Some("application/xml"), None),
            (Some("text/plain"), None),
            (Some("application/octet-stream"), None),
            (Some("application/jsonx"), None),
            (Some("application/json x; charset=utf-8"), None),
            (
                Some("application/json ; charset=utf-8"),
                Some(RewriteKind::Json),
            ),
            (
                Some("APPLICATION/JSON;odata.metadata=minimal"),
                Some(RewriteKind::Json),
            ),
            (Some("json"), None),
            (None, None),
        ];
        for (header, want) in cases {
            assert_eq!(RewriteKind::for_content_type(header), want, "{header:?}");
        }
    }
}
