//! Layer `proxy`: the shell every agent request passes through.
//!
//! [`server`] accepts connections and hands each request to [`pipeline`] (route → decide → limit
//! → token → forward → rewrite → log). [`gateway`] holds the swappable configuration snapshot
//! and each tenant's runtime; [`route`] picks the tenant; [`org`] and [`upstream`] own the
//! connections to Dataverse; [`body`] streams bodies; [`rewrite`] points the org's URLs at the
//! gateway; [`pipeline::observe`] finishes each request when its body ends;
//! [`gateway::metadata_loader`] keeps each tenant's `$metadata` fresh; [`activity`] is what one
//! agent connection is doing. [`mcp`] is the MCP front door: it builds Web API requests from
//! tool calls and feeds them to the pipeline as [`agent_body::AgentBody::Built`] bodies.
//!
//! Inside the layer, top to bottom: `server` > `mcp` > `pipeline` (with `observe`) > `gateway`
//! (with `listener`, `metadata_loader`) > `org`, `upstream`, `body`, `route`, `rewrite`,
//! `activity`, `agent_body`.
//!
//! Guarantee: every request follows the one pipeline, and every decision about it is taken by
//! the pure [`crate::policy`] layer below; this layer does the I/O around it. May use every
//! layer below it (telemetry, policy, identity, limit, config, clock, error), never
//! [`crate::ops`], [`crate::cli`] or [`crate::sim`].

pub mod activity;
pub mod agent_body;
pub mod body;
pub mod gateway;
pub mod mcp;
pub mod org;
pub mod pipeline;
pub mod rewrite;
pub mod route;
pub mod server;
pub mod upstream;
