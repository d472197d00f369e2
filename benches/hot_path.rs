//! Hot-path micro benchmark: the streaming URL rewriter.
//! Run with `cargo bench --bench hot_path`. Figures live in the benches, never in unit tests.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataverse_gateway::rewrite::{BodyRewriter, Encoding, RewriteKind};

/// A realistic 10 MB Dataverse page: rows with ids, names and a nextLink at the end.
fn page(org: &str) -> Vec<u8> {
    let mut s =
        format!("{{\"@odata.context\":\"{org}/api/data/v9.2/$metadata#contacts\",\"value\":[");
    let mut i = 0u64;
    while s.len() < 10 * 1024 * 1024 {
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
    let body = page(org);
    let mut group = c.benchmark_group("rewrite");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    group.bench_function("json 10 MB page in 16 KiB frames", |b| {
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
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
