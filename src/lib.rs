//! dataverse-gateway: a policy gateway between AI agents and Microsoft Dataverse.
//!
//! # The map: one folder per layer
//!
//! Top to bottom; a module may use its own layer and the layers below it, never one above
//! (`scripts/check-layers.sh` checks this):
//!
//! | layer | folder | what lives there |
//! |-------|--------|------------------|
//! | 8 | [`cli`] | the command line: `serve`, `check`, `explain`, [`cli::demo`], [`cli::doctor`], [`cli::report`] |
//! | 7 | [`ops`] | the process: [`ops::service`] (`serve`), the [`ops::admin`] listener, hot [`ops::reload`] |
//! | 6 | [`proxy`] | the shell every request passes through: [`proxy::server`], [`proxy::pipeline`] (with [`proxy::pipeline::observe`]), [`proxy::gateway`] (config snapshot, tenant runtime, [`proxy::gateway::metadata_loader`]), [`proxy::route`], [`proxy::org`], [`proxy::upstream`], [`proxy::body`], [`proxy::rewrite`], [`proxy::activity`], [`proxy::mcp`] (the MCP front door), [`proxy::agent_body`] |
//! | 6 | [`sim`] | beside `proxy`: the built-in simulated Entra ID and Dataverse, used only by `cli` (the demo) and the tests |
//! | 5 | [`telemetry`] | [`telemetry::metrics`], [`telemetry::audit`] |
//! | 4 | [`policy`] | the pure core: [`policy::odata`], [`policy::batch`], [`policy::metadata`], [`policy::classify`], [`policy::decision`], [`policy::headers`], [`policy::inspect`] |
//! | 3 | [`identity`], [`limit`] | [`identity::token`], [`identity::vault`], [`identity::clients`], [`identity::agent_token`], [`identity::tls`]; per-tenant and per-client traffic control |
//! | 2 | [`config`] | parse and validate `gateway.yaml`; [`config::secret`] resolves secret references |
//! | 1 | [`clock`], [`error`], [`pace`], [`spare`] | cross-cutting: injected time, Dataverse-shaped errors, yield points for long work beside the event loop, per-thread spares of recycled allocations |
//!
//! # Request flow
//!
//! ```text
//! agent ──HTTP──▶ server ──▶ pipeline: route → decide → limit → token → forward → rewrite → log ──HTTPS──▶ Dataverse
//!                                        │        │        │        │                        ▲
//!                                      route   policy    limit  identity              org / body / rewrite
//! ```
//!
//! 1. [`proxy::server`] accepts HTTP/1.1 and HTTP/2, wraps each request in the edge layer
//!    (catch-panic) and hands it to [`proxy::pipeline`], the one pipeline every request follows.
//!    [`identity::clients`] identifies the client first (a static key, or an Entra ID token
//!    checked by [`identity::agent_token`]); the client's effective policy, limits and `act_as`
//!    apply from then on.
//! 2. [`proxy::route`] picks the tenant from the path prefix, the Host header or the default.
//! 3. [`policy::inspect`] classifies the request with [`policy::classify`] and decides it with
//!    [`policy::decision`] against the tenant's allowlist (default deny). [`policy::headers`]
//!    strips what must never reach Dataverse.
//! 4. [`limit`] applies the tenant's rate and concurrency caps.
//! 5. [`identity::token`] supplies the tenant's Entra ID token (cache, single flight, proactive
//!    refresh).
//! 6. [`proxy::org`] forwards over the org's own connection pool (rustls, HTTP/2 or HTTP/1.1,
//!    built by [`proxy::upstream`]); [`proxy::body`] streams the answer back through
//!    [`proxy::rewrite`], which points the org's absolute URLs at the gateway.
//! 7. Every gateway-made error becomes a Dataverse-shaped response in [`error`] /
//!    [`proxy::pipeline::respond_error`] only.
//! 8. [`proxy::pipeline::observe`] finishes each request when its response body ends:
//!    [`telemetry::metrics`], one [`telemetry::audit`] record, one access log line (debug level).
//!
//! The MCP front door ([`proxy::mcp`], `/{tenant}/mcp` and `/mcp`) sits between the server and
//! the pipeline: it turns each tool call into Web API requests, built in-process as
//! `http::Request`s, and hands them to the same pipeline with the caller's credentials; the
//! classifier decides each one, and each is audited with `front_door: "mcp"` and the tool.
//!
//! # Pure cores and shells
//!
//! Pure (no I/O, no clock): [`config`] (parse + validate), the whole [`policy`] layer,
//! [`proxy::route`], [`proxy::rewrite`], [`error`], [`cli::report`], [`identity::agent_token::jwt`], the
//! cache policy in [`identity::token`], the record shaping in [`telemetry::audit`].
//! Everything else is a shell around them. Time that matters comes from [`clock`]. Long pure
//! work (parsing a CSDL) calls [`pace::point`] between steps, which never changes its result:
//! it only lets a background thread (a reload, a fetched `$metadata`) give the CPU back to
//! the event loop.
#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod identity;
pub mod limit;
pub mod ops;
pub mod pace;
pub mod policy;
pub mod proxy;
pub mod sim;
pub mod spare;
pub mod telemetry;
