//! dataverse-gateway (map written when the pipeline lands).
#![forbid(unsafe_code)]

pub mod body;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod headers;
pub mod limit;
pub mod odata;
pub mod policy;
pub mod proxy;
pub mod report;
pub mod rewrite;
pub mod route;
pub mod secret;
pub mod server;
pub mod sim;
pub mod token;
pub mod upstream;
