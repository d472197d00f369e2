//! Large responses stream through the gateway.

mod common;

use common::*;
use dataverse_gateway::sim::SimConfig;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn a_100_mib_response_streams_through() {
    const SIZE: u64 = 100 * 1024 * 1024;
    let sim = SimConfig {
        large_response_bytes: SIZE,
        ..SimConfig::default()
    };
    let h = Harness::build(sim, |sim| {
        format!(
            "tenants:\n{}",
            tenant_yaml("contoso", true, sim, 0, &default_secret(), DEFAULT_POLICY)
        )
    })
    .await;
    let before = peak_rss_kib();
    let mut r = h.get("annotations").await;
    assert_eq!(r.status(), 200);
    let mut total: u64 = 0;
    let mut head = Vec::new();
    let mut tail = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        total += chunk.len() as u64;
        if head.len() < 200 {
            head.extend_from_slice(&chunk[..chunk.len().min(200)]);
        }
        tail = chunk.to_vec();
    }
    assert_eq!(
        total,
        SIZE - (h.sim.base_url().len() as u64) + (h.url.len() as u64),
        "only the context URL changed length"
    );
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with(&format!(
            "{{\"@odata.context\":\"{}/api/data/v9.2/$metadata#annotations\"",
            h.url
        )),
        "{head}"
    );
    assert!(tail.ends_with(b"]}"));
    // Memory is a benchmark concern; the figure is printed for the record, not asserted.
    eprintln!(
        "peak RSS before {before} KiB, after {} KiB (simulator and gateway in one process)",
        peak_rss_kib()
    );
}
