//! Test harness: a simulator and a gateway in front of it, both on loopback port 0.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use dataverse_gateway::clock::{Clock, ManualClock};
use dataverse_gateway::config;
use dataverse_gateway::proxy::gateway::Gateway;
use dataverse_gateway::proxy::server;
use dataverse_gateway::sim::{SimConfig, Simulator};
use tokio::sync::oneshot;

pub mod proc;
pub mod sim_client;

pub const DEFAULT_POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH, DELETE]
      leads: [GET, PATCH]
      annotations: [GET]
      accounts: [GET]
      systemusers: [GET]
    functions: [WhoAmI]
";

/// How long any single wait of a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How long the gateway may take to load every tenant's metadata.
pub const METADATA_DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `future`, panicking with `what` when it takes longer than [`DEADLINE`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

pub struct Harness {
    pub sim: Simulator,
    pub clock: Arc<ManualClock>,
    pub gateway: Arc<Gateway>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

/// The YAML of one tenant `name` pointing at `sim`, with `secret` and `policy` (indented 4).
pub fn tenant_yaml(
    name: &str,
    default: bool,
    sim: &Simulator,
    app: usize,
    secret: &str,
    policy: &str,
) -> String {
    let apps = &sim_apps(sim)[app];
    format!(
        "  {name}:\n    default: {default}\n    dataverse:\n      url: {url}\n      metadata_file: {csdl}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n      client_secret: \"{secret}\"\n{policy}",
        url = sim.base_url(),
        csdl = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/metadata.xml"),
        tid = apps.0,
        cid = apps.1,
    )
}

fn sim_apps(_sim: &Simulator) -> Vec<(String, String)> {
    SimConfig::default()
        .apps
        .iter()
        .map(|a| (a.tenant_id.clone(), a.client_id.clone()))
        .collect()
}

pub fn default_secret() -> String {
    SimConfig::default().apps[0].secret.clone()
}

impl Harness {
    /// One default tenant `contoso` with [`DEFAULT_POLICY`] and the right secret.
    pub async fn start() -> Harness {
        Harness::with_policy(DEFAULT_POLICY).await
    }

    pub async fn with_policy(policy: &str) -> Harness {
        Harness::build(SimConfig::default(), |sim| {
            format!(
                "tenants:\n{}",
                tenant_yaml("contoso", true, sim, 0, &default_secret(), policy)
            )
        })
        .await
    }

    /// A simulator built from `sim_config` (its clock replaced by the harness clock) and a
    /// gateway whose config YAML `yaml(sim)` returns.
    pub async fn build(
        mut sim_config: SimConfig,
        yaml: impl FnOnce(&Simulator) -> String,
    ) -> Harness {
        dataverse_gateway::identity::tls::install_crypto_provider();
        let clock = Arc::new(ManualClock::new());
        sim_config.clock = clock.clone() as Arc<dyn Clock>;
        let sim = Simulator::start(sim_config)
            .await
            .expect("simulator starts");
        let text = yaml(&sim);
        let (config, _) =
            config::parse_str(&text, "test.yaml").unwrap_or_else(|d| panic!("{d}\n{text}"));
        let gateway =
            Gateway::new(config, clock.clone() as Arc<dyn Clock>).expect("gateway builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let g = Arc::clone(&gateway);
        tokio::spawn(async move {
            server::serve(
                listener,
                g,
                async {
                    let _ = stopped.await;
                },
                Duration::from_secs(5),
            )
            .await;
        });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let h = Harness {
            sim,
            clock,
            gateway,
            url,
            http,
            stop: Some(stop),
        };
        h.wait_for_metadata().await;
        h
    }

    /// Waits until every tenant has its metadata: from its file at once, or fetched from the
    /// simulator by the background loader. Panics after [`METADATA_DEADLINE`]: a test that goes
    /// on without metadata would only see fail-closed denials and mislead.
    pub async fn wait_for_metadata(&self) {
        let loaded = || {
            self.gateway
                .snapshot()
                .tenants
                .iter()
                .all(|t| t.metadata().is_some())
        };
        // The gateway offers no event for "metadata loaded": poll, within a deadline.
        let polled = async {
            while !loaded() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(METADATA_DEADLINE, polled)
            .await
            .is_err()
        {
            let missing: Vec<String> = self
                .gateway
                .snapshot()
                .tenants
                .iter()
                .filter(|t| t.metadata().is_none())
                .map(|t| t.config.name.clone())
                .collect();
            panic!(
                "the gateway did not load the metadata of {missing:?} within {METADATA_DEADLINE:?}"
            );
        }
    }

    /// Waits for the simulator to have recorded `count` Dataverse requests, or panics.
    pub async fn upstream_reached(&self, count: usize) {
        within(
            &format!("{count} request(s) reaching the simulator"),
            self.sim.requests_reached(count),
        )
        .await;
    }

    /// `{url}/api/data/v9.2/{path}`
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/data/v9.2/{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.api(path)).send().await.unwrap()
    }

    /// The Dataverse requests the simulator received.
    pub fn upstream_requests(&self) -> Vec<dataverse_gateway::sim::RecordedRequest> {
        self.sim.requests()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
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
