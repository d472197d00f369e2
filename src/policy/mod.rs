//! Layer `policy`: the pure core that decides what an agent may do.
//!
//! [`odata`] parses a Dataverse Web API request (path, query options, FetchXML), [`batch`]
//! splits a `$batch` body, [`metadata`] reads the tenant's CSDL, [`classify`] reduces a request
//! to everything it touches, [`decision`] decides it against the tenant's allowlist (default
//! deny), [`headers`] keeps header hygiene in both directions, and [`inspect`] runs the whole
//! judgement for one request or every part of a `$batch`.
//!
//! Guarantee: pure — no I/O, no clock, no global state; the same request, metadata and
//! configuration always give the same decision. May use only [`crate::config`] and
//! [`crate::error`] below it.

pub mod act_as;
pub mod batch;
pub mod classify;
pub mod decision;
pub mod headers;
pub mod inspect;
pub mod metadata;
pub mod odata;
