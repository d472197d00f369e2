//! dataverse-gateway: a policy gateway between AI agents and Microsoft Dataverse.
//!
//! # Request flow
//!
//! ```text
//! agent ──HTTP──▶ server ──▶ proxy: route → decide → limit → token → forward → rewrite → log ──HTTPS──▶ Dataverse
//!                                      │         │        │          │                        ▲
//!                                   route    policy   limit    token/entra             rewrite/body
//! ```
//!
//! 1. [`server`] accepts HTTP/1.1 and HTTP/2, wraps each request in the edge layer
//!    (catch-panic) and hands it to [`proxy`], the one pipeline every request follows.
//! 2. [`route`] picks the tenant from the path prefix, the Host header or the default.
//! 3. [`policy`] classifies the request with [`odata`] and decides against the tenant's allowlist
//!    (default deny). [`headers`] strips what must never reach Dataverse.
//! 4. [`limit`] applies the tenant's rate and concurrency caps.
//! 5. [`token`] supplies the tenant's Entra ID token (cache, single flight, proactive refresh).
//! 6. [`org`] forwards over the org's own connection pool (rustls, HTTP/2 or HTTP/1.1, built by
//!    [`upstream`]); [`body`] streams the answer back through [`rewrite`], which points the
//!    org's absolute URLs at the gateway.
//! 7. Every gateway-made error becomes a Dataverse-shaped response in [`error`] /
//!    [`proxy::respond_error`] only.
//! 8. [`observe`] finishes each request when its response body ends: [`metrics`], one
//!    [`audit`] record, one access log line (debug level). [`clients`] checks internal client keys first.
//!
//! # The process
//!
//! [`service`] runs `serve`: the agents' listener (TLS via [`tls`]), the [`admin`] listener
//! (`/metrics`, `/healthz`, `/readyz`), hot [`reload`] (SIGHUP, file changes) and graceful
//! shutdown.
//!
//! # Pure cores and shells
//!
//! Pure (no I/O, no clock): [`config`] (parse + validate), [`route`], [`odata`], [`policy`],
//! [`headers`], [`rewrite`], [`error`], [`report`], [`clients`], the cache policy in [`token`],
//! the record shaping in [`audit`].
//! Shells: [`server`], [`proxy`], [`gateway`] (the swappable config snapshot), [`upstream`], [`org`],
//! [`cli`], [`demo`], [`doctor`] (the setup guide's validation steps against the real org),
//! [`service`], [`admin`], [`reload`], [`observe`]. [`sim`] is the built-in simulated Entra ID and Dataverse used by the demo
//! and the tests. Time that matters comes from [`clock`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod batch;
pub mod body;
pub mod classify;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod gateway;
pub mod headers;
pub mod inspect;
pub mod limit;
pub mod metadata;
pub mod metadata_loader;
pub mod metrics;
pub mod observe;
pub mod odata;
pub mod org;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod report;
pub mod rewrite;
pub mod route;
pub mod secret;
pub mod server;
pub mod service;
pub mod sim;
pub mod tls;
pub mod token;
pub mod upstream;
