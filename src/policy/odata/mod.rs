//! OData request parsing: the resource path and the query options of a Dataverse Web API call,
//! reduced to what the policy needs to decide.
//!
//! Pure: no I/O. Invariants:
//! - the classification is made on exactly the bytes that are forwarded (the raw path and query
//!   are never re-encoded), after the same percent-decoding Dataverse applies;
//! - anything this parser does not fully understand is reported as [`ParseError::NotUnderstood`]
//!   so that the policy denies it — it never guesses;
//! - malformed or ambiguous input (bad escapes, duplicate or unknown `$` options) is
//!   [`ParseError::Malformed`].

pub mod expand;
pub mod expr;
pub mod fetchxml;
pub mod path;
mod query;
pub mod skiptoken;

pub use expand::{ExpandItem, parse_expand};
pub use path::{Head, KeySpec, NAMESPACE, ResourcePath, Segment, parse_path};
pub use query::{OPTIONS, QUERY_PARAMETERS, Query, parse_query};

/// Why a request cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The request is malformed or ambiguous: 400.
    #[error("{0}")]
    Malformed(String),
    /// Valid OData the gateway does not inspect yet, so it may reach other tables: 403.
    #[error("{0}")]
    NotUnderstood(String),
}

/// Percent-decodes `s`; `plus_as_space` applies the query-string convention.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Result<String, ParseError> {
    let bytes = s.as_bytes();
    let special = |b: u8| b == b'%' || (plus_as_space && b == b'+');
    // Most names and values have nothing to decode: one copy, no byte-by-byte pass.
    let Some(first) = bytes.iter().position(|&b| special(b)) else {
        return Ok(s.to_string());
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ParseError::Malformed("the URL contains an invalid percent-encoding".into())
                    })?;
                out.push(byte);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ParseError::Malformed("the URL decodes to invalid UTF-8".into()))
}

/// OData simple identifier.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true).unwrap(), "a b c");
        assert_eq!(percent_decode("a+b", false).unwrap(), "a+b");
        assert!(percent_decode("%zz", false).is_err());
        assert!(percent_decode("%2", false).is_err());
        assert!(percent_decode("%ff", false).is_err());
    }
}
