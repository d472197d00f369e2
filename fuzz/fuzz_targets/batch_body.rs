//! `$batch` bodies: [`batch::parse`] never panics; whatever it accepts survives
//! `serialize` → `parse` unchanged (and serialises to the same bytes again); `inspect` never
//! panics, and the body it forwards for an allowed batch parses and is allowed again ("forward
//! what was judged").
#![no_main]

use std::sync::OnceLock;

use dataverse_gateway::batch;
use dataverse_gateway::classify::{Request, Urls};
use dataverse_gateway::config::{Policy, TableRule, Verb};
use dataverse_gateway::inspect::{self, Inspected, MAX_BATCH_PARTS, Tenant};
use dataverse_gateway::metadata::Metadata;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPE: &str = "multipart/mixed; boundary=batch_fuzz";

struct Fixture {
    meta: Metadata,
    policy: Policy,
    urls: Urls,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let meta = Metadata::parse(include_bytes!("../../src/sim/metadata.xml")).expect("CSDL");
        let mut policy = Policy::default();
        let rule = |verbs: &[Verb], columns: Option<&[&str]>| TableRule {
            verbs: verbs.to_vec(),
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        };
        policy.tables.insert(
            "contacts".into(),
            rule(&[Verb::Get, Verb::Post, Verb::Patch, Verb::Delete], None),
        );
        policy.tables.insert(
            "accounts".into(),
            rule(&[Verb::Get, Verb::Post], Some(&["name"])),
        );
        policy
            .tables
            .insert("leads".into(), rule(&[Verb::Get, Verb::Patch], None));
        Fixture {
            meta,
            policy,
            urls: Urls {
                org: "https://org.crm.dynamics.com".into(),
                gateway: vec!["http://gw:8080/contoso".into(), "http://gw:8080".into()],
                api_version: "v9.2".into(),
            },
        }
    })
}

fn inspect_batch(body: &[u8], content_type: &str) -> Inspected {
    let f = fixture();
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_str(content_type).expect("content type"),
    );
    let tenant = Tenant {
        policy: &f.policy,
        metadata: Some(&f.meta),
        urls: &f.urls,
    };
    inspect::inspect(
        &tenant,
        &Request {
            method: &Method::POST,
            path: "$batch",
            query: None,
            headers: &headers,
            body: Some(body),
        },
    )
}

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = batch::parse(CONTENT_TYPE, data, MAX_BATCH_PARTS) {
        let wire = batch::serialize(&parsed);
        let again = batch::parse(&parsed.content_type(), &wire, MAX_BATCH_PARTS)
            .expect("serialize output parses");
        assert_eq!(parsed, again, "parse(serialize(b)) != b");
        assert_eq!(wire, batch::serialize(&again), "serialize is not stable");
    }
    let got = inspect_batch(data, CONTENT_TYPE);
    if got.decision.allowed() {
        let forwarded = got.body.expect("an allowed batch is re-serialised");
        batch::parse(CONTENT_TYPE, &forwarded, MAX_BATCH_PARTS)
            .expect("the forwarded batch parses");
        let again = inspect_batch(&forwarded, CONTENT_TYPE);
        assert!(
            again.decision.allowed(),
            "the forwarded batch is denied: {}",
            again.decision.reason
        );
    }
});
