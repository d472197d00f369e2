//! The MCP front door's overhead: a `query` tool call against the equivalent direct Web API
//! request (the same `GET contacts?$select=fullname,emailaddress1&$top=5`, the same `Prefer`),
//! both through the gateway to the built-in simulator on loopback, keep-alive HTTP/1.1.
//!
//! Run with `cargo bench --bench mcp`. Criterion reports wall time per call; before it, the
//! bench prints the process CPU time per call of each (gateway, simulator and client together,
//! from `/proc/self/stat`, over [`CPU_CALLS`] calls in [`ROUNDS`] alternating rounds) and the MCP call's overhead in percent. The
//! MCP call costs more by what MCP itself adds: the JSON-RPC envelope, buffering the rows and
//! answering them twice (as `structuredContent` and as its JSON text, as the spec asks).

use std::future::pending;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dataverse_gateway::clock::SystemClock;
use dataverse_gateway::config;
use dataverse_gateway::proxy::gateway::Gateway;
use dataverse_gateway::proxy::server;
use dataverse_gateway::sim::{SimConfig, Simulator};

const CPU_CALLS: u32 = 4000;
/// Alternating rounds of direct and MCP calls for the CPU figure.
const ROUNDS: u32 = 8;

fn yaml(sim: &Simulator, app: &dataverse_gateway::sim::SimApp) -> String {
    let url = sim.base_url();
    format!(
        r#"listen: 127.0.0.1:0
tenants:
  bench:
    default: true
    dataverse:
      url: {url}
      metadata_file: {csdl}
    auth:
      tenant_id: {}
      client_id: {}
      authority: {url}
      client_secret: "{}"
    allow:
      contacts: [GET, POST, PATCH]
    functions: [WhoAmI]
"#,
        app.tenant_id,
        app.client_id,
        app.secret,
        csdl = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/metadata.xml"),
    )
}

/// This process's CPU time (user + system) so far, from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

const MCP_QUERY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{"table":"contacts","select":["fullname","emailaddress1"],"top":5},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;

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
    let (sim, base) = rt.block_on(async {
        let sim = Simulator::start(sim_config).await.expect("simulator");
        let (config, _) = config::parse_str(&yaml(&sim, &app), "bench.yaml").expect("config");
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
        (sim, format!("http://{addr}"))
    });
    let client = reqwest::Client::new();
    let direct_url =
        format!("{base}/api/data/v9.2/contacts?$select=fullname%2Cemailaddress1&$top=5");
    let mcp_url = format!("{base}/mcp");
    let direct = || {
        let request = client
            .get(&direct_url)
            .header("prefer", "odata.maxpagesize=50")
            .send();
        async move {
            let response = request.await.expect("the gateway answers");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("a body")
        }
    };
    let mcp = || {
        let request = client
            .post(&mcp_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "query")
            .body(MCP_QUERY)
            .send();
        async move {
            let response = request.await.expect("the gateway answers");
            assert_eq!(response.status(), 200);
            let body = response.bytes().await.expect("a body");
            assert!(
                body.windows(15).any(|w| w == b"\"isError\":false"),
                "{body:?}"
            );
            body
        }
    };
    rt.block_on(direct());
    rt.block_on(mcp());

    // Interleaved rounds, so drift on a shared machine (frequency, other load) hits both alike.
    let (mut cpu_direct, mut cpu_mcp) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let start = cpu_time().unwrap_or_default();
        for _ in 0..CPU_CALLS / ROUNDS {
            black_box(rt.block_on(direct()));
        }
        let middle = cpu_time().unwrap_or_default();
        for _ in 0..CPU_CALLS / ROUNDS {
            black_box(rt.block_on(mcp()));
        }
        cpu_direct += middle - start;
        cpu_mcp += cpu_time().unwrap_or_default() - middle;
    }
    let (cpu_direct, cpu_mcp) = (cpu_direct / CPU_CALLS, cpu_mcp / CPU_CALLS);
    let overhead = (cpu_mcp.as_secs_f64() / cpu_direct.as_secs_f64() - 1.0) * 100.0;
    println!(
        "CPU per call over {CPU_CALLS} calls: direct Web API {cpu_direct:?}, MCP query {cpu_mcp:?}: MCP overhead {overhead:.1}%"
    );

    let mut group = c.benchmark_group("mcp");
    group.bench_function("direct Web API GET contacts", |b| {
        b.iter(|| black_box(rt.block_on(direct())))
    });
    group.bench_function("MCP query tool call", |b| {
        b.iter(|| black_box(rt.block_on(mcp())))
    });
    group.finish();
    drop(sim);
}

criterion_group!(benches, bench);
criterion_main!(benches);
