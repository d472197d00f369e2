//! Classify + decide, the work the gateway does on every request before forwarding it:
//! a simple GET, the load benchmark's GET without options, a nested `$expand`, a fetchXml with link-entities and a 100-part `$batch`.
//! Run with `cargo bench --bench policy`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dataverse_gateway::config::{Policy, TableRule, Verb};
use dataverse_gateway::policy::classify::{Request, Urls};
use dataverse_gateway::policy::inspect::{self, Tenant};
use dataverse_gateway::policy::metadata::Metadata;
use http::{HeaderMap, HeaderValue, Method};

fn policy() -> Policy {
    let mut p = Policy::default();
    for i in 0..16 {
        p.tables.insert(
            format!("table{i}s"),
            TableRule {
                verbs: vec![Verb::Get],
                columns: None,
            },
        );
    }
    for set in ["contacts", "accounts", "opportunities", "leads"] {
        p.tables.insert(
            set.into(),
            TableRule {
                verbs: vec![Verb::Get, Verb::Post, Verb::Patch],
                columns: None,
            },
        );
    }
    p.functions.push("WhoAmI".into());
    p
}

fn urls() -> Urls {
    Urls {
        org: "https://org.crm.dynamics.com".into(),
        gateway: vec!["http://gw:8080/contoso".into(), "http://gw:8080".into()],
        api_version: "v9.2".into(),
    }
}

fn batch_body(parts: usize) -> String {
    let mut s = String::new();
    for i in 0..parts {
        s.push_str(&format!(
            "--batch_b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET http://gw:8080/api/data/v9.2/contacts?$select=fullname&$filter=parentcustomerid_account/name%20eq%20'{i}' HTTP/1.1\r\nAccept: application/json\r\n\r\n"
        ));
    }
    s.push_str("--batch_b--\r\n");
    s
}

fn bench(c: &mut Criterion) {
    let meta = Metadata::parse(include_bytes!("../src/sim/metadata.xml")).expect("sim CSDL");
    let policy = policy();
    let urls = urls();
    let tenant = Tenant {
        policy: &policy,
        metadata: Some(&meta),
        urls: &urls,
    };
    let plain = HeaderMap::new();
    let run = |method: &Method,
               path: &str,
               query: Option<&str>,
               headers: &HeaderMap,
               body: Option<&[u8]>| {
        let req = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        let d = inspect::inspect(&tenant, &req);
        assert!(d.decision.allowed(), "{}", d.decision.reason());
        d
    };
    c.bench_function("classify+decide simple GET", |b| {
        b.iter(|| {
            run(
                &Method::GET,
                black_box("contacts"),
                Some(black_box(
                    "$select=fullname,emailaddress1&$filter=fullname%20ne%20null&$top=50",
                )),
                &plain,
                None,
            )
        })
    });
    // The load benchmark's request (`benches/load/run.sh`): a whole-row read, no options.
    c.bench_function("classify+decide GET without options", |b| {
        b.iter(|| run(&Method::GET, black_box("contacts"), None, &plain, None))
    });
    let expand = "$select=name&$expand=contact_customer_accounts($select=fullname;$filter=fullname%20ne%20null;$expand=parentcustomerid_account($select=name)),opportunity_parent_account($select=name;$orderby=name)";
    c.bench_function("classify+decide nested $expand", |b| {
        b.iter(|| {
            run(
                &Method::GET,
                black_box("accounts"),
                Some(black_box(expand)),
                &plain,
                None,
            )
        })
    });
    let fetch = "fetchXml=%3Cfetch%20top%3D%2250%22%3E%3Centity%20name%3D%22account%22%3E%3Cattribute%20name%3D%22name%22%2F%3E%3Cfilter%3E%3Ccondition%20attribute%3D%22name%22%20operator%3D%22like%22%20value%3D%22a%25%22%2F%3E%3C%2Ffilter%3E%3Clink-entity%20name%3D%22contact%22%20from%3D%22parentcustomerid%22%20to%3D%22accountid%22%20alias%3D%22c%22%3E%3Cattribute%20name%3D%22fullname%22%2F%3E%3Clink-entity%20name%3D%22opportunity%22%20from%3D%22parentaccountid%22%20to%3D%22parentcustomerid%22%3E%3Cattribute%20name%3D%22name%22%2F%3E%3C%2Flink-entity%3E%3C%2Flink-entity%3E%3C%2Fentity%3E%3C%2Ffetch%3E";
    c.bench_function("classify+decide fetchXml with link-entities", |b| {
        b.iter(|| {
            run(
                &Method::GET,
                black_box("accounts"),
                Some(black_box(fetch)),
                &plain,
                None,
            )
        })
    });
    let body = batch_body(100);
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        HeaderValue::from_static("multipart/mixed; boundary=batch_b"),
    );
    c.bench_function("classify+decide 100-part $batch", |b| {
        b.iter(|| {
            run(
                &Method::POST,
                "$batch",
                None,
                &h,
                Some(black_box(body.as_bytes())),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
