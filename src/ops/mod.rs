//! Layer `ops`: the running process around the proxy.
//!
//! [`service`] runs `serve` (listeners, logging, audit, shutdown), [`admin`] serves
//! `/metrics`, `/healthz` and `/readyz`, [`reload`] swaps in a new configuration on SIGHUP or a
//! file change. Guarantee: everything here only starts, stops or swaps what [`crate::proxy`]
//! defines; no request decision is taken in this layer. May use every layer below it, never
//! [`crate::cli`].

pub mod admin;
pub mod reload;
pub mod service;
