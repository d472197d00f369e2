//! CSDL parse benchmark: a synthetic Dataverse `$metadata` of 3000 tables (~150 columns and ~30
//! navigation properties each, with annotations; about 50 MB), and a 20 MB one of the same shape.
//! Run with `cargo bench --bench metadata -- --warm-up-time 1 --measurement-time 5`.
//! Also prints the retained size of the parsed model, measured as the growth of the process's
//! resident set (Linux only; an estimate that includes allocator overhead).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataverse_gateway::policy::metadata::{Metadata, synthetic_csdl};

const TABLES: usize = 3000;

/// Resident set size in bytes, from `/proc/self/statm` (None elsewhere).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn report_retained_size(xml: &[u8]) {
    let before = resident_bytes();
    let metadata = Metadata::parse(xml).expect("the synthetic CSDL parses");
    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        let types = metadata.entity_types().count();
        let grown = after.saturating_sub(before);
        println!(
            "retained: ~{:.1} MB for {types} entity types, ~{} KB per type",
            grown as f64 / 1e6,
            grown / types as u64 / 1024
        );
    }
    drop(black_box(metadata));
}

fn parse(c: &mut Criterion) {
    let full = synthetic_csdl(TABLES);
    println!(
        "synthetic CSDL: {:.1} MB, {TABLES} tables",
        full.len() as f64 / 1e6
    );
    report_retained_size(full.as_bytes());
    // The brief's element counts make 3000 tables larger than 20 MB; measure 20 MB as well.
    let tables_20mb = TABLES * 20_000_000 / full.len();
    let mb20 = synthetic_csdl(tables_20mb);
    let mut group = c.benchmark_group("metadata");
    group.sample_size(10);
    for (name, xml) in [
        (format!("parse {TABLES} tables"), &full),
        (format!("parse 20 MB ({tables_20mb} tables)"), &mb20),
    ] {
        group.throughput(Throughput::Bytes(xml.len() as u64));
        group.bench_function(name, |b| {
            b.iter_with_large_drop(|| Metadata::parse(black_box(xml.as_bytes())).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
