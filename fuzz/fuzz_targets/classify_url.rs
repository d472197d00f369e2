//! `inspect` on arbitrary requests: never panics, with or without the tenant's metadata, and
//! an allowed decision only uses allowlisted tables with allowed verbs.
//!
//! Input: one control byte (method, headers, metadata on/off), then `path[?query]`, then
//! optionally `\n` and the raw body.
#![no_main]

use std::sync::OnceLock;

use dataverse_gateway::classify::{Request, Urls, Use};
use dataverse_gateway::config::{Policy, TableRule, Verb};
use dataverse_gateway::inspect::{self, Tenant};
use dataverse_gateway::metadata::Metadata;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 8] = [
    Method::GET,
    Method::POST,
    Method::PATCH,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::GET,
];

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
            rule(&[Verb::Get], Some(&["name", "revenue"])),
        );
        policy
            .tables
            .insert("leads".into(), rule(&[Verb::Get, Verb::Patch], None));
        policy.tables.insert(
            "opportunities".into(),
            rule(&[Verb::Get, Verb::Put], Some(&["name", "estimatedvalue"])),
        );
        policy.functions.push("WhoAmI".into());
        policy.actions.push("CreateMultiple".into());
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

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let method = &METHODS[usize::from(control & 7)];
    let (line, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let line = String::from_utf8_lossy(line);
    let (path, query) = line
        .split_once('?')
        .map_or((&*line, None), |(p, q)| (p, Some(q)));
    let mut headers = HeaderMap::new();
    if control & 0x08 != 0 {
        headers.insert("prefer", HeaderValue::from_static("return=representation"));
    }
    let content_type = if control & 0x10 != 0 {
        "multipart/mixed; boundary=batch_fuzz"
    } else {
        "application/json"
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    let tenant = Tenant {
        policy: &f.policy,
        metadata: (control & 0x20 == 0).then_some(&f.meta),
        urls: &f.urls,
    };
    let got = inspect::inspect(
        &tenant,
        &Request {
            method,
            path,
            query,
            headers: &headers,
            body,
        },
    );
    if got.decision.allowed() {
        for u in &got.decision.uses {
            if let Use::Table(t) = u {
                let rule = f.policy.tables.get(&t.set);
                assert!(
                    rule.is_some_and(|r| r.allows(t.verb)),
                    "allowed {} on {}",
                    t.verb.as_str(),
                    t.set
                );
            }
        }
    }
});
