//! Response URL rewriting: the org's absolute URLs (`https://org.crm.dynamics.com/api/...`)
//! become the gateway's base for the tenant (`http://gateway:8080/contoso/api/...`), so that
//! paging and follow-up calls keep going through the gateway.
//!
//! - [`rewrite_url`]: header values (`OData-EntityId`, `Location`).
//! - [`JsonRewriter`]: JSON bodies; only annotation values (`@odata.nextLink`, `@odata.context`,
//!   `@odata.id`, ... see [`json::ANNOTATIONS`]), never data.
//! - [`TextRewriter`]: `multipart/mixed` `$batch` bodies; every occurrence.
//! - [`BodyRewriter`]: either of them behind a gzip/deflate decoder; its output is always
//!   identity-encoded (see [`body`]).
//!
//! Guarantees:
//! - Pure: no I/O, no clock, no async. Values in, values out.
//! - Matching is by origin prefix: `from` (`scheme://host[:port]`) followed by `/` or the end
//!   of the value (in text, also `"` or whitespace). Scheme and host compare
//!   ASCII-case-insensitively; everything after the prefix is kept byte for byte. So
//!   `https://org.crm.dynamics.com.evil.net/...` never matches. In JSON, a `/` may be written `\/`.
//! - Chunking does not matter: any split of a body into pushes gives the same output as one push.
//! - Bounded memory: a streaming rewriter holds back at most `from.len() + (number of '/' in
//!   from) + 1` bytes (31 for `https://org.crm.dynamics.com`) and remembers at most
//!   [`json::KEY_CAP`] bytes of the last key, whatever the body size. Everything else is emitted
//!   at once.
//! - Never panics, on any bytes. Bytes that are not part of a match pass through unchanged, so
//!   valid JSON stays valid JSON (provided `to` is a URL; in JSON it is escaped anyway).

mod blocks;
pub mod body;
mod encoding;
pub mod json;
mod origin;
pub mod text;

pub use body::BodyRewriter;
pub use encoding::{Encoding, RewriteError, RewriteKind};
pub use json::{JsonRewriter, JsonTarget};
pub use origin::rewrite_url;
pub use text::TextRewriter;

#[cfg(test)]
mod json_model;
#[cfg(test)]
mod json_props;
#[cfg(test)]
mod tests;
