//! Hot-path micro benchmark: the streaming URL rewriter.
//! Run with `cargo bench --bench hot_path`. Figures live in the benches, never in unit tests.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataverse_gateway::rewrite::{BodyRewriter, Encoding, RewriteKind};

/// A realistic Dataverse page of about `size` bytes: rows with ids, names and a nextLink at the
/// end.
fn page(org: &str, size: usize) -> Vec<u8> {
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
    s.push_str(&format!(
        "],\"@odata.nextLink\":\"{org}/api/data/v9.2/contacts?$skiptoken=x\"}}"
    ));
    s.into_bytes()
}

fn rewrite(c: &mut Criterion) {
    let org = "https://contoso.crm.dynamics.com";
    let mut group = c.benchmark_group("rewrite");
    // The big page measures the lexer's speed; the small one (the load benchmark's page) also
    // the per-response set-up.
    for (name, size, samples) in [
        ("json 10 MB page in 16 KiB frames", 10 * 1024 * 1024, 20),
        ("json 1 KiB page", 900, 100),
    ] {
        let body = page(org, size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.sample_size(samples);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut r = BodyRewriter::new(
                    RewriteKind::Json,
                    Encoding::Identity,
                    org,
                    "http://gw:8080/contoso",
                );
                let mut n = 0;
                for chunk in body.chunks(16 * 1024) {
                    n += r.push(chunk).unwrap().len();
                }
                n + r.finish().unwrap().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
