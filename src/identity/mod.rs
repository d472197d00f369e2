//! Layer `identity`: who is calling and who the gateway is towards Dataverse.
//!
//! [`token`] obtains and caches each tenant's Entra ID access token (client secret,
//! certificate, managed identity, workload identity); [`vault`] reads credentials from Azure Key
//! Vault and has it sign client assertions; [`clients`] checks the internal client
//! keys agents present; [`tls`] builds the agents' listener TLS and mutual-TLS configuration.
//! Guarantee: no secret or token leaves this layer except towards the party it is meant for,
//! and none is ever logged. May use [`crate::config`], [`crate::clock`] and [`crate::error`]
//! only.

pub mod clients;
pub mod tls;
pub mod token;
pub mod vault;
