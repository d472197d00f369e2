//! The one harness of the integration tests: every test file declares `mod common;` and starts
//! what it needs from here, never on its own.
//!
//! - [`agents`]: agent identities registered in the simulator, their tokens, and a gateway
//!   config with Entra-authenticated and key clients;
//! - [`harness`]: a gateway in this process ([`serve`]), and the usual pair of the simulator and
//!   a gateway in front of it on the injected clock ([`Harness`]);
//! - [`proc`]: the real binary as a child process, and the commands operators run;
//! - [`pki`]: a test CA with server and client certificates, and self-signed app certificates;
//! - [`sim_client`]: the simulator alone, talked to directly over HTTP;
//! - [`upstream`] and [`hostile`]: a raw-TCP upstream that misbehaves on purpose, and a gateway
//!   with short timeouts in front of it.
//!
//! Every wait has a deadline; nothing sleeps for something it could await.
#![allow(dead_code)]

use std::time::Duration;

use dataverse_gateway::sim::{SimConfig, Simulator};

pub mod agents;
pub mod harness;
pub mod hostile;
pub mod mcp;
pub mod pki;
pub mod proc;
pub mod sim_client;
pub mod upstream;
pub mod vault;

// Re-exported for `use common::*`; not every test file uses every one.
#[allow(unused_imports)]
pub use harness::{
    DEFAULT_POLICY, Harness, METADATA_DEADLINE, Served, default_secret, serve, tenant_yaml,
    wait_for_metadata,
};

/// How long any single wait of a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The simulator's CSDL, standing in for an org's saved `$metadata`.
pub const SIM_CSDL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/metadata.xml");

/// Awaits `future`, panicking with `what` when it takes longer than [`DEADLINE`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// A simulator on a loopback port.
pub async fn simulator(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("simulator starts")
}

/// The HTTP client of the tests: no proxy from the environment.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// The process-wide TLS crypto provider, as the binary installs it.
pub fn install_crypto_provider() {
    dataverse_gateway::identity::tls::install_crypto_provider();
}

/// Parses a gateway error body and returns (code, message).
pub async fn error_of(r: reqwest::Response) -> (String, String) {
    let v: serde_json::Value = r.json().await.expect("JSON error body");
    (
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}
