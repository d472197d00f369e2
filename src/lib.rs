//! dataverse-gateway (map written when the pipeline lands).
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod error;
pub mod headers;
pub mod odata;
pub mod policy;
pub mod rewrite;
pub mod route;
pub mod secret;
pub mod sim;
pub mod token;
pub mod body;
pub mod gateway;
pub mod limit;
pub mod proxy;
pub mod server;
pub mod upstream;
pub mod cli;
pub mod demo;
pub mod report;
