//! A gateway in this process: [`serve`] starts one from its YAML on a loopback port (over TLS
//! when the YAML has a `tls:` section, with its audit sink when it has `audit:`, as `serve`
//! does), and [`Harness`] puts one in front of a fresh simulator on the injected clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dataverse_gateway::clock::{Clock, ManualClock};
use dataverse_gateway::config;
use dataverse_gateway::identity::tls;
use dataverse_gateway::proxy::gateway::Gateway;
use dataverse_gateway::proxy::server;
use dataverse_gateway::sim::{SimConfig, Simulator};
use dataverse_gateway::telemetry::audit::AuditSink;
use tokio::sync::oneshot;

use super::{SIM_CSDL, client, install_crypto_provider, simulator, within};

pub const DEFAULT_POLICY: &str = "
    allow:
      contacts: [GET, POST, PATCH, DELETE]
      leads: [GET, PATCH]
      annotations: [GET]
      accounts: [GET]
      systemusers: [GET]
    functions: [WhoAmI]
";

/// How long the gateway may take to load every tenant's metadata.
pub const METADATA_DEADLINE: Duration = Duration::from_secs(10);

/// A gateway serving on a loopback port; it shuts down when this is dropped.
pub struct Served {
    pub gateway: Arc<Gateway>,
    pub addr: SocketAddr,
    /// The YAML it was started from.
    pub yaml: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Served {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a gateway from `yaml` with `clock`, and waits for every tenant's metadata.
pub async fn serve(yaml: &str, clock: Arc<dyn Clock>) -> Served {
    install_crypto_provider();
    let (config, _) =
        config::parse_str(yaml, "test.yaml").unwrap_or_else(|d| panic!("{d}\n{yaml}"));
    let shared_tls = config.tls.as_ref().map(|t| {
        let built = tls::server_config(t).expect("TLS config builds");
        Arc::new(arc_swap::ArcSwap::new(built))
    });
    let audit = config.audit.clone();
    let gateway = Gateway::new(config, clock).expect("gateway builds");
    if let Some(audit) = audit {
        let dropped = gateway.metrics.audit_dropped.clone();
        gateway.set_audit(AuditSink::start(&audit, dropped).expect("audit sink starts"));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve_tls(
        listener,
        Arc::clone(&gateway),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
        shared_tls,
    ));
    wait_for_metadata(&gateway).await;
    Served {
        gateway,
        addr,
        yaml: yaml.to_string(),
        stop: Some(stop),
    }
}

/// Waits until every tenant has its metadata: from its file at once, or fetched by the
/// background loader. Panics after [`METADATA_DEADLINE`], naming the tenants without: a test
/// that goes on without metadata would only see fail-closed denials and mislead.
pub async fn wait_for_metadata(gateway: &Gateway) {
    let missing = || -> Vec<String> {
        let snapshot = gateway.snapshot();
        let without = snapshot.tenants.iter().filter(|t| t.metadata().is_none());
        without.map(|t| t.config.name.clone()).collect()
    };
    // The gateway offers no event for "metadata loaded": poll, within a deadline.
    let polled = async {
        while !missing().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(METADATA_DEADLINE, polled)
        .await
        .is_err()
    {
        panic!(
            "the gateway did not load the metadata of {:?} within {METADATA_DEADLINE:?}",
            missing()
        );
    }
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
    let app = &SimConfig::default().apps[app];
    format!(
        "  {name}:\n    default: {default}\n    dataverse:\n      url: {url}\n      metadata_file: {SIM_CSDL}\n    auth:\n      tenant_id: {tid}\n      client_id: {cid}\n      authority: {url}\n      client_secret: \"{secret}\"\n{policy}",
        url = sim.base_url(),
        tid = app.tenant_id,
        cid = app.client_id,
    )
}

pub fn default_secret() -> String {
    SimConfig::default().apps[0].secret.clone()
}

/// The simulator and a gateway in front of it, both on the harness's [`ManualClock`].
pub struct Harness {
    pub sim: Simulator,
    pub clock: Arc<ManualClock>,
    pub gateway: Arc<Gateway>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub http: reqwest::Client,
    served: Served,
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
        let clock = Arc::new(ManualClock::new());
        sim_config.clock = clock.clone() as Arc<dyn Clock>;
        let sim = simulator(sim_config).await;
        let served = serve(&yaml(&sim), clock.clone() as Arc<dyn Clock>).await;
        Harness {
            sim,
            clock,
            gateway: Arc::clone(&served.gateway),
            url: served.url(),
            http: client(),
            served,
        }
    }

    /// Waits for every tenant's metadata (see [`wait_for_metadata`]).
    pub async fn wait_for_metadata(&self) {
        wait_for_metadata(&self.gateway).await;
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
