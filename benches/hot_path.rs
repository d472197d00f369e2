//! Hot-path micro benchmarks: the streaming URL rewriter, the audit record, and the clock reads
//! a request makes.
//! Run with `cargo bench --bench hot_path`. Figures live in the benches, never in unit tests.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dataverse_gateway::config::Verb;
use dataverse_gateway::policy::classify::{Columns, Touch, Use};
use dataverse_gateway::policy::decision::Reason;
use dataverse_gateway::proxy::rewrite::{BodyRewriter, Encoding, JsonTarget, RewriteKind};
use dataverse_gateway::telemetry::audit::Record;

/// A realistic Dataverse page of about `size` bytes: rows with ids, names and (`next_link`) a
/// nextLink at the end.
fn page(org: &str, size: usize, next_link: bool) -> Vec<u8> {
    let mut s =
        format!("{{\"@odata.context\":\"{org}/api/data/v9.2/$metadata#contacts\",\"value\":[");
    let mut i = 0u64;
    while s.len() < size {
        s.push_str(&format!(
            "{{\"@odata.etag\":\"W/\\\"{i}\\\"\",\"contactid\":\"c0000000-0000-4000-8000-{i:012}\",\"fullname\":\"Person {i}\",\"emailaddress1\":\"p{i}@example.com\"}},"
        ));
        i += 1;
    }
    s.pop();
    s.push(']');
    if next_link {
        s.push_str(&format!(
            ",\"@odata.nextLink\":\"{org}/api/data/v9.2/contacts?$skiptoken=x\""
        ));
    }
    s.push('}');
    s.into_bytes()
}

fn rewrite(c: &mut Criterion) {
    let org = "https://contoso.crm.dynamics.com";
    let mut group = c.benchmark_group("rewrite");
    // The big page measures the lexer's speed; the small one (the load benchmark's page) also
    // the per-response set-up: with the target built for each response, or prepared once as
    // the proxy does (`BodyRewriter::json` on the tenant's `JsonTarget`).
    let to = "http://gw:8080/contoso";
    let target = JsonTarget::new(org, to);
    // "ended by the proxy": the last frame given to `push_last`, as the proxy does when the org
    // gave the body's length (it stops lexing after the last `"` that could open a URL).
    for (name, size, samples, prepared, next_link, last) in [
        (
            "json 10 MB page in 16 KiB frames",
            10 * 1024 * 1024,
            20,
            false,
            true,
            false,
        ),
        ("json 1 KiB page", 900, 100, false, true, false),
        (
            "json 1 KiB page, prepared target",
            900,
            100,
            true,
            true,
            false,
        ),
        (
            "json 1 KiB page, prepared target, ended by the proxy",
            900,
            100,
            true,
            true,
            true,
        ),
        (
            "json 1 KiB page without nextLink, prepared target, ended by the proxy",
            900,
            100,
            true,
            false,
            true,
        ),
    ] {
        let body = page(org, size, next_link);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.sample_size(samples);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut r = if prepared {
                    BodyRewriter::json(Encoding::Identity, Arc::clone(&target))
                } else {
                    BodyRewriter::new(RewriteKind::Json, Encoding::Identity, org, to)
                };
                let mut n = 0;
                let mut chunks = body.chunks(16 * 1024).peekable();
                while let Some(chunk) = chunks.next() {
                    if last && chunks.peek().is_none() {
                        return n + r.push_last(chunk).unwrap().len();
                    }
                    n += r.push(chunk).unwrap().len();
                }
                n + r.finish().unwrap().len()
            })
        });
    }
    group.finish();
}

/// One audit line as the load benchmark's requests produce it (written for every request; the
/// allow reason written from the uses, as the gateway does).
fn audit(c: &mut Criterion) {
    let uses = [Use::Table(Touch {
        set: "contacts".into(),
        verb: Verb::Get,
        columns: Columns::new(),
        all_columns: true,
        main: true,
    })];
    c.bench_function("audit record to JSON", |b| {
        b.iter(|| {
            Record {
                timestamp: SystemTime::now(),
                request_id: "a24acb32-5439-42f1-a2a8-a70b1e11ae4f",
                tenant: Some("bench"),
                client: None,
                method: "GET",
                path: "/api/data/v9.2/contacts".into(),
                access: &uses,
                decision: "allow",
                reason: Reason::Rules(&uses),
                error: None,
                status: 200,
                upstream_status: Some(200),
                completed: true,
                latency: Duration::from_micros(2647),
                upstream_latency: Some(Duration::from_micros(2378)),
                bytes_in: 0,
                bytes_out: 1024,
            }
            .to_json()
        })
    });
}

/// What a request pays per clock read (on a virtual machine, a read of either clock is not a
/// few instructions but tens of nanoseconds: callgrind does not see it), against the audit
/// timestamp derived from the monotonic instant the request has already read
/// (`clock::wall_at`).
fn clocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    group.bench_function("Instant::now", |b| b.iter(Instant::now));
    group.bench_function("SystemTime::now", |b| b.iter(SystemTime::now));
    // The audit's pair of readings before and after `clock::wall_at`.
    group.bench_function("Instant::now + SystemTime::now", |b| {
        b.iter(|| (Instant::now(), SystemTime::now()))
    });
    group.bench_function("Instant::now + wall_at", |b| {
        b.iter(|| {
            let now = Instant::now();
            (now, dataverse_gateway::clock::wall_at(now))
        })
    });
    group.finish();
}

criterion_group!(benches, rewrite, audit, clocks);
criterion_main!(benches);
