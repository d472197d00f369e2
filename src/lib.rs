//! dataverse-gateway (map written when the pipeline lands).
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod secret;
pub mod rewrite;
pub mod sim;
