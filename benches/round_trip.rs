//! In-process benchmarks against the built-in simulator on loopback: the token-cache hit path
//! (what every request pays for its token once one is cached) and a full round trip agent →
//! gateway → simulated Dataverse → gateway → agent over keep-alive HTTP/1.1.
//! Run with `cargo bench --bench round_trip`. The round trip includes the simulator's own work,
//! so it tracks regressions; the load benchmark (benches/load/run.sh) measures the gateway alone.

use std::future::pending;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::config;
use dataverse_gateway::identity::token::TokenSource;
use dataverse_gateway::proxy::gateway::Gateway;
use dataverse_gateway::proxy::server;
use dataverse_gateway::sim::{SimConfig, Simulator};

/// The gateway's config for `sim`: one default tenant, no limits.
fn yaml(sim: &Simulator, app: &dataverse_gateway::sim::SimApp) -> String {
    let url = sim.base_url();
    format!(
        r#"listen: 127.0.0.1:0
tenants:
  bench:
    default: true
    dataverse:
      url: {url}
    auth:
      tenant_id: {}
      client_id: {}
      authority: {url}
      client_secret: "{}"
    allow:
      contacts: [GET, POST, PATCH]
      accounts: [GET]
    functions: [WhoAmI]
"#,
        app.tenant_id, app.client_id, app.secret
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim_config = SimConfig {
        clock: Arc::new(SystemClock),
        ..SimConfig::default()
    };
    let app = sim_config.apps.first().cloned().expect("a simulated app");
    let (sim, config) = rt.block_on(async {
        let sim = Simulator::start(sim_config).await.expect("simulator");
        let (config, _) = config::parse_str(&yaml(&sim, &app), "bench.yaml").expect("config");
        (sim, config)
    });

    // The token-cache hit path.
    let upstream =
        dataverse_gateway::proxy::upstream::Upstream::new(&config.upstream_tls, &config.timeouts)
            .expect("upstream");
    let source = TokenSource::new(
        config.tenants[0].auth.clone(),
        upstream.entra.clone(),
        Arc::new(SystemClock),
    );
    rt.block_on(source.token()).expect("a first token");
    c.bench_function("token cache hit", |b| {
        b.iter(|| rt.block_on(source.token()).expect("cached"))
    });

    // A full round trip through the gateway.
    let gateway_url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gateway = Gateway::new(config, Arc::new(SystemClock)).expect("gateway");
        tokio::spawn(server::serve(
            listener,
            gateway,
            pending::<()>(),
            Duration::from_secs(1),
        ));
        format!("http://{addr}/api/data/v9.2/contacts?$select=fullname&$top=3")
    });
    let client = reqwest::Client::new();
    let get = |url: &str| {
        let request = client.get(url).send();
        async move {
            let response = request.await.expect("the gateway answers");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("a body")
        }
    };
    rt.block_on(get(&gateway_url));
    c.bench_function("round trip GET contacts via the gateway", |b| {
        b.iter(|| black_box(rt.block_on(get(&gateway_url))))
    });
    drop(sim);
}

criterion_group!(benches, bench);
criterion_main!(benches);
